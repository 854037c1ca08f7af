//! Bundles `web/` with esbuild (when its npm dependencies are installed) and embeds `web/dist`.
//!
//! `scripts/setup.sh` runs `npm ci` in `web/`; after that every `cargo build` rebuilds the bundle
//! when a web source changes. Without node or its modules, an existing `web/dist` is embedded; with
//! neither, the binary serves a page that says how to build the console.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let web = manifest.join("../../web");
    for watched in [
        "src",
        "static",
        "build.mjs",
        "package.json",
        "node_modules/.package-lock.json",
        "../crates/reach-proto/proto",
    ] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }
    if web.join("node_modules").is_dir() {
        bundle(&web);
    }
    let dist = web.join("dist");
    let mut files = Vec::new();
    if dist.is_dir() {
        collect(&dist, &dist, &mut files);
    } else {
        println!(
            "cargo:warning=web/dist missing: the console is not embedded (run scripts/setup.sh)"
        );
    }
    files.sort();
    let mut out = String::from("/// Embedded console files: (URL path, content type, bytes).\n");
    out.push_str("pub(crate) static ASSETS: &[(&str, &str, &[u8])] = &[\n");
    for (url, path) in &files {
        let _ = writeln!(
            out,
            "    ({url:?}, {:?}, include_bytes!({:?})),",
            content_type(url),
            path.display()
        );
    }
    out.push_str("];\n");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("assets.rs"), out).expect("write assets.rs");
}

fn bundle(web: &Path) {
    let status = Command::new("node")
        .arg("build.mjs")
        .current_dir(web)
        .status();
    match status {
        Ok(status) if status.success() => {}
        Ok(status) => {
            panic!("web bundle failed ({status}): run `npm run build` in web/ to see why")
        }
        Err(error) => {
            println!("cargo:warning=node not runnable ({error}); embedding the existing web/dist")
        }
    }
}

fn collect(root: &Path, dir: &Path, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(root, &path, files);
        } else if let Ok(relative) = path.strip_prefix(root) {
            let url = format!("/{}", relative.to_string_lossy().replace('\\', "/"));
            let absolute = path.canonicalize().unwrap_or(path);
            files.push((url, absolute));
        }
    }
}

fn content_type(url: &str) -> &'static str {
    match url.rsplit('.').next() {
        Some("html") => "text/html; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("wasm") => "application/wasm",
        Some("json") => "application/json",
        _ => "application/octet-stream",
    }
}
