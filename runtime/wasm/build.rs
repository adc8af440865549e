//! Builds `runtime/vilokanam-runtime` to wasm and writes `wasm_binary.rs`
//! (skipped with `SKIP_WASM_BUILD=1`).
//!
//! This does what `substrate-wasm-builder` does for a `wasm32v1-none`
//! runtime, without its build dependencies (binaryen through `wasm-opt`,
//! and the zstd C library), which cost minutes of every cold build:
//!
//! 1. `cargo rustc -p vilokanam-runtime --crate-type cdylib
//!    --no-default-features --release --target wasm32v1-none` in a target
//!    directory of its own, with the
//!    flags the builder passes (`--cfg substrate_runtime`, memory imported,
//!    table and `__heap_base` exported). `wasm32v1-none` emits only MVP
//!    features plus mutable globals, so the builder's `wasm-opt` pass
//!    (sign-extension lowering) has nothing to do, and a release build has
//!    no DWARF to strip.
//! 2. Check that the `runtime_version` custom section is present (nodes
//!    read the runtime version from it).
//! 3. Compress it as `sp-maybe-compressed-blob` does: its 8-byte prefix,
//!    then one zstd frame (here from the pure-Rust `ruzstd`).
//!
//! Only this crate's own features are forwarded (`runtime-benchmarks`, for
//! `runtime/bench`), so features enabled on the native runtime for tests
//! never reach the wasm the chain runs.

use std::path::{Path, PathBuf};
use std::process::Command;

/// `sp_maybe_compressed_blob`'s marker of a zstd-compressed code blob.
const ZSTD_PREFIX: [u8; 8] = [82, 188, 83, 118, 70, 219, 142, 5];
const TARGET: &str = "wasm32v1-none";

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let dest = out.join("wasm_binary.rs");
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let root = manifest
        .join("../..")
        .canonicalize()
        .expect("the workspace root exists");
    println!("cargo:rerun-if-env-changed=SKIP_WASM_BUILD");
    // Relative to this package (cargo resolves them against the package
    // it builds): absolute paths would tie the cached build to the clone
    // that first ran it, and a second clone sharing the target dir (whose
    // units hash the same) would keep a wasm built from the other's tree.
    for path in ["../vilokanam-runtime", "../pallets", "../../Cargo.lock"] {
        println!("cargo:rerun-if-changed={path}");
    }
    if std::env::var_os("SKIP_WASM_BUILD").is_some() {
        write(
            &dest,
            "/// The compact, compressed wasm (none: SKIP_WASM_BUILD).\n\
             pub const WASM_BINARY: Option<&[u8]> = None;\n\
             /// The uncompressed wasm (none: SKIP_WASM_BUILD).\n\
             pub const WASM_BINARY_BLOATY: Option<&[u8]> = None;\n",
        );
        return;
    }
    let benchmarks = std::env::var_os("CARGO_FEATURE_RUNTIME_BENCHMARKS").is_some();
    // A target dir of its own: the outer cargo holds the lock of its own.
    let target_dir = out.join("target");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&root)
        // `rustc --crate-type cdylib`: the runtime is an rlib for native
        // use; only this build makes it a wasm module.
        .args(["rustc", "--locked", "--release", "--target", TARGET])
        .args(["-p", "vilokanam-runtime", "--lib", "--crate-type", "cdylib"])
        .arg("--no-default-features")
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", rustflags(&root, &target_dir))
        // The outer build's settings must not leak into this one (CI
        // builds with clippy as the workspace wrapper).
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("RUSTC")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .env_remove("CLIPPY_ARGS")
        .env_remove("CARGO_TARGET_DIR")
        .env("SKIP_WASM_BUILD", "1");
    if benchmarks {
        cmd.args(["--features", "runtime-benchmarks"]);
    }
    let status = cmd
        .status()
        .expect("running cargo to build the runtime's wasm");
    assert!(
        status.success(),
        "building the runtime's wasm failed ({status}); is the {TARGET} target installed? (rustup target add {TARGET})"
    );
    let bloaty = target_dir
        .join(TARGET)
        .join("release")
        .join("vilokanam_runtime.wasm");
    let wasm = std::fs::read(&bloaty).unwrap_or_else(|e| panic!("{}: {e}", bloaty.display()));
    assert!(
        has_custom_section(&wasm, "runtime_version"),
        "{} has no runtime_version section (is `#[sp_version::runtime_version]` on VERSION?)",
        bloaty.display()
    );
    let mut compressed = ZSTD_PREFIX.to_vec();
    compressed.extend(ruzstd::encoding::compress_to_vec(
        &wasm[..],
        ruzstd::encoding::CompressionLevel::Fastest,
    ));
    let compact = out.join("vilokanam_runtime.compact.compressed.wasm");
    std::fs::write(&compact, &compressed).expect("writing the compressed wasm");
    write(
        &dest,
        &format!(
            "/// The compact, compressed wasm.\n\
             pub const WASM_BINARY: Option<&[u8]> = Some(include_bytes!({:?}));\n\
             /// The uncompressed wasm.\n\
             pub const WASM_BINARY_BLOATY: Option<&[u8]> = Some(include_bytes!({:?}));\n",
            compact.display().to_string(),
            bloaty.display().to_string()
        ),
    );
}

/// The flags `substrate-wasm-builder` passes, plus path remapping: panic
/// locations embed source paths, and the registry's
/// (`$CARGO_HOME/registry/src/…`), the clone's and the target dir's differ
/// from machine to machine. Remapped, the wasm (and so the shipped chain
/// spec, whose `:code` it is) is the same wherever it is built with the
/// same toolchain and `Cargo.lock`; CI checks that.
fn rustflags(root: &Path, target_dir: &Path) -> String {
    println!("cargo:rerun-if-env-changed=CARGO_HOME");
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cargo")));
    let mut flags = String::from(
        "-C link-arg=--export-table -C link-arg=--export=__heap_base \
         -C link-arg=--import-memory --cfg substrate_runtime",
    );
    let mut remap = |from: &Path, to: &str| {
        // RUSTFLAGS splits on spaces: a path with one cannot be remapped
        // this way (the wasm then depends on it, and CI says so).
        if let Some(from) = from.to_str().filter(|f| !f.contains(' ')) {
            flags.push_str(&format!(" --remap-path-prefix={from}={to}"));
        }
    };
    // The last matching remap wins: the most specific paths go last.
    remap(root, "/vilokanam");
    if let Some(home) = &cargo_home {
        let home = home.canonicalize().unwrap_or_else(|_| home.clone());
        remap(&home, "/cargo");
    }
    remap(target_dir, "/target");
    flags
}

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// Whether the wasm module has a custom section named `name`.
fn has_custom_section(wasm: &[u8], name: &str) -> bool {
    fn leb(b: &[u8], pos: &mut usize) -> Option<usize> {
        let (mut v, mut shift) = (0usize, 0);
        loop {
            let byte = *b.get(*pos)?;
            *pos += 1;
            v |= usize::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Some(v);
            }
            shift += 7;
            if shift > 35 {
                return None;
            }
        }
    }
    if wasm.get(..8) != Some(&[0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]) {
        return false;
    }
    let mut pos = 8;
    while pos < wasm.len() {
        let id = wasm[pos];
        pos += 1;
        let Some(size) = leb(wasm, &mut pos) else {
            return false;
        };
        let end = pos + size;
        if id == 0 {
            let mut p = pos;
            if let Some(len) = leb(wasm, &mut p) {
                if wasm.get(p..p + len) == Some(name.as_bytes()) {
                    return true;
                }
            }
        }
        pos = end;
    }
    false
}
