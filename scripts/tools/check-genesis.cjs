// Checks a raw chain spec against the runtime itself: runs the spec's own
// wasm (`:code`) GenesisBuilder API (default config + preset patch, then
// build_state) in chopsticks' executor and compares the resulting storage
// with `genesis.raw.top`, key by key. scripts/chain-spec.sh builds genesis
// natively; this proves the wasm would build the very same state.
// Usage: node check-genesis.cjs <tools dir> <raw spec> [preset]
const fs = require('fs');
const [tools, specPath, preset = 'development'] = process.argv.slice(2);
const core = require(tools + '/node_modules/@acala-network/chopsticks-core');
const { u8aToHex, hexToU8a, compactAddLength, stringToU8a, u8aToString } = require(tools + '/node_modules/@polkadot/util');
const top = JSON.parse(fs.readFileSync(specPath, 'utf8')).genesis.raw.top;
const wasm = top['0x3a636f6465'];
const handler = { ...core.emptyTaskHandler, getStorage: async () => undefined, getNextKey: async () => undefined };
const call = async (method, args) => {
  const r = await core.runTask({ wasm, calls: [[method, args]], mockSignatureHost: false, allowUnresolvedImports: false, runtimeLogLevel: 0 }, handler);
  if (r.Error) throw new Error(method + ': ' + r.Error);
  return r.Call;
};
// SCALE Option<Vec<u8>>
const optVec = (hex) => {
  const u = hexToU8a(hex);
  if (u[0] === 0) return null;
  const m = u[1] & 3;
  let len, off;
  if (m === 0) { len = u[1] >> 2; off = 2; }
  else if (m === 1) { len = (u[1] | (u[2] << 8)) >> 2; off = 3; }
  else if (m === 2) { len = (u[1] | (u[2] << 8) | (u[3] << 16) | (u[4] << 24)) >>> 2; off = 5; }
  else throw new Error('preset too large');
  return u.subarray(off, off + len);
};
const merge = (a, b) => {
  if (b && typeof b === 'object' && !Array.isArray(b) && a && typeof a === 'object' && !Array.isArray(a)) {
    for (const k of Object.keys(b)) a[k] = merge(a[k], b[k]);
    return a;
  }
  return b;
};
(async () => {
  const def = JSON.parse(u8aToString(optVec((await call('GenesisBuilder_get_preset', ['0x00'])).result)));
  const arg = u8aToHex(new Uint8Array([1, ...compactAddLength(stringToU8a(preset))]));
  const patch = optVec((await call('GenesisBuilder_get_preset', [arg])).result);
  if (!patch) throw new Error('the wasm has no preset ' + preset);
  const cfg = merge(def, JSON.parse(u8aToString(patch)));
  const res = await call('GenesisBuilder_build_state', [u8aToHex(compactAddLength(stringToU8a(JSON.stringify(cfg))))]);
  if (res.result !== '0x00') throw new Error('build_state failed: ' + res.result);
  const built = { '0x3a636f6465': wasm };
  for (const [k, v] of res.storageDiff) if (v != null) built[k] = v;
  const keys = new Set([...Object.keys(built), ...Object.keys(top)]);
  let bad = 0;
  for (const k of keys) {
    if (built[k] !== top[k]) {
      bad++;
      console.error('genesis mismatch at ' + k + ': wasm ' + String(built[k]).slice(0, 40) + ', spec ' + String(top[k]).slice(0, 40));
    }
  }
  await core.destroyWorker();
  if (bad) { console.error(bad + ' genesis keys differ'); process.exit(1); }
  console.log('genesis of ' + specPath + ' = the wasm\'s own GenesisBuilder output (' + keys.size + ' keys)');
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
