// Reads the runtime metadata from a runtime wasm by executing its
// `Metadata_metadata_at_version` API in chopsticks' executor, and writes
// the bare metadata bytes (`RuntimeMetadataPrefixed`, SCALE) to a file:
// what subxt generates its types from. Taken from the wasm the chain runs,
// never from a native build (whose features may differ).
// Usage: node wasm-metadata.cjs <tools dir> <runtime.wasm> <out file> [version]
const fs = require('fs');
const [tools, wasmPath, outPath, version = '16'] = process.argv.slice(2);
const core = require(tools + '/node_modules/@acala-network/chopsticks-core');
const { u8aToHex, hexToU8a, u8aToU8a } = require(tools + '/node_modules/@polkadot/util');
const wasm = u8aToHex(fs.readFileSync(wasmPath));
const handler = { ...core.emptyTaskHandler, getStorage: async () => undefined, getNextKey: async () => undefined };
// SCALE compact length prefix: returns [length, bytes consumed].
const compact = (u, o) => {
  const m = u[o] & 3;
  if (m === 0) return [u[o] >> 2, 1];
  if (m === 1) return [(u[o] | (u[o + 1] << 8)) >> 2, 2];
  if (m === 2) return [(u[o] | (u[o + 1] << 8) | (u[o + 2] << 16) | (u[o + 3] << 24)) >>> 2, 4];
  throw new Error('metadata larger than 1 GiB');
};
(async () => {
  const v = Number(version);
  const arg = u8aToHex(new Uint8Array([v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255]));
  const r = await core.runTask({ wasm, calls: [['Metadata_metadata_at_version', [arg]]], mockSignatureHost: false, allowUnresolvedImports: false, runtimeLogLevel: 0 }, handler);
  if (r.Error) throw new Error('Metadata_metadata_at_version: ' + r.Error);
  const u = hexToU8a(r.Call.result);
  // Option<OpaqueMetadata>: 0x01, compact length, bytes.
  if (u[0] !== 1) throw new Error('the wasm has no metadata V' + v);
  const [len, n] = compact(u, 1);
  const bytes = u.subarray(1 + n, 1 + n + len);
  if (bytes.length !== len) throw new Error('metadata truncated');
  fs.writeFileSync(outPath, u8aToU8a(bytes));
  await core.destroyWorker();
  console.log(outPath + ': metadata V' + v + ' from the wasm (' + len + ' bytes)');
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
