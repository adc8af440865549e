// A Helia node (js IPFS, Helia 7 on Node 22) fetches a VOD from one of our
// nodes over Bitswap and pins it: p2p-node/tests/vod.rs drives it.
//
// usage: node helia-fetch.mjs TOOLS_DIR MULTIADDR CID OUT_DIR
// Prints JSON: { peer, files: {path: size}, pinned, seconds }.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, dirname } from 'node:path'
import { pathToFileURL } from 'node:url'

const [toolsDir, addr, cidText, out] = process.argv.slice(2)
async function load (m) {
  const dir = join(toolsDir, 'node_modules', m)
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  let e = pkg.exports?.['.'] ?? pkg.exports ?? pkg.main
  while (typeof e === 'object') e = e.import ?? e.node ?? e.default
  return import(pathToFileURL(join(dir, e)).href)
}
const { createHelia } = await load('helia')
const { unixfs } = await load('@helia/unixfs')
const { tcp } = await load('@libp2p/tcp')
const { noise } = await load('@chainsafe/libp2p-noise')
const { yamux } = await load('@chainsafe/libp2p-yamux')
const { identify } = await load('@libp2p/identify')
const { multiaddr } = await load('@multiformats/multiaddr')
const { CID } = await load('multiformats')

const t0 = performance.now()
// Loopback TCP only: no bootstrap, no DHT, no relay (no network here).
const helia = await createHelia({
  libp2p: {
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    peerDiscovery: [],
    services: { identify: identify() }
  }
})
await helia.start()
const fs = unixfs(helia)
const timeout = AbortSignal.timeout(60_000)
await helia.libp2p.dial(multiaddr(addr), { signal: timeout })
const root = CID.parse(cidText)
const files = {}
async function walk (cid, path) {
  const stat = await fs.stat(cid, { signal: timeout })
  if (stat.type === 'directory') {
    mkdirSync(join(out, path), { recursive: true })
    for await (const e of fs.ls(cid, { signal: timeout })) await walk(e.cid, join(path, e.name))
  } else {
    const parts = []
    for await (const b of fs.cat(cid, { signal: timeout })) parts.push(b)
    const bytes = Buffer.concat(parts)
    mkdirSync(dirname(join(out, path)), { recursive: true })
    writeFileSync(join(out, path), bytes)
    files[path] = bytes.length
  }
}
await walk(root, '')
for await (const _ of helia.pins.add(root, { signal: timeout })) { /* each pinned block */ }
const pinned = await helia.pins.isPinned(root)
const seconds = (performance.now() - t0) / 1000
console.log(JSON.stringify({ peer: helia.libp2p.peerId.toString(), files, pinned, seconds }))
await helia.stop()
process.exit(0)
