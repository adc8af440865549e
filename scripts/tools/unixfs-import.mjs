// The independent importer of the differential test (p2p-node/tests/
// unixfs_interop.rs): imports a directory with ipfs-unixfs-importer's
// defaults (= `ipfs add -r --cid-version=1`) and prints, as JSON, the root
// CID, every block's CID (sorted, as reached from the root) and the hex of a CARv1 holding the DAG
// in depth-first link order (the order `ipfs dag export` writes),
// written by @ipld/car.
//
// usage: node unixfs-import.mjs TOOLS_DIR INPUT_DIR [v0|v1] [root-only]
import { readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative, basename } from 'node:path'
import { pathToFileURL } from 'node:url'

const [toolsDir, input, profile, mode] = process.argv.slice(2)
// ESM-only packages: their entry from package.json's exports.
async function load (m) {
  const dir = join(toolsDir, 'node_modules', m)
  const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
  let e = pkg.exports?.['.'] ?? pkg.exports ?? pkg.main
  while (typeof e === 'object') e = e.import ?? e.node ?? e.default
  return import(pathToFileURL(join(dir, e)).href)
}
const { importer } = await load('ipfs-unixfs-importer')
const { MemoryBlockstore } = await load('blockstore-core')
const { CarWriter } = await load('@ipld/car')
const dagPb = await load('@ipld/dag-pb')

const name = basename(input)
function * walkDir (dir) {
  const entries = readdirSync(dir)
  if (entries.length === 0 && dir !== input) yield { path: join(name, relative(input, dir)) }
  for (const e of entries) {
    const p = join(dir, e)
    if (statSync(p).isDirectory()) yield * walkDir(p)
    else yield { path: join(name, relative(input, p)), content: readFileSync(p) }
  }
}
const blockstore = new MemoryBlockstore()
const opts = profile === 'v0' ? { cidVersion: 0, rawLeaves: false } : {}
let root
for await (const entry of importer(walkDir(input), blockstore, opts)) root = entry
if (mode === 'root-only') {
  process.stdout.write(JSON.stringify({ root: root.cid.toString() }))
  process.exit(0)
}

const { writer, out } = CarWriter.create([root.cid])
const chunks = []
const collect = (async () => { for await (const c of out) chunks.push(c) })()
const seen = new Set()
async function dfs (cid) {
  const key = cid.toString()
  if (seen.has(key)) return
  seen.add(key)
  let bytes = await blockstore.get(cid)
  if (!(bytes instanceof Uint8Array)) {
    const parts = []
    for await (const p of bytes) parts.push(p)
    bytes = new Uint8Array(Buffer.concat(parts))
  }
  await writer.put({ cid, bytes })
  if (cid.code === dagPb.code) for (const l of dagPb.decode(bytes).Links) await dfs(l.Hash)
}
await dfs(root.cid)
await writer.close()
// Every block of the DAG with its codec (the blockstore keys by multihash).
const cids = [...seen].sort()
await collect
process.stdout.write(JSON.stringify({ root: root.cid.toString(), cids, car: Buffer.concat(chunks).toString('hex') }))
