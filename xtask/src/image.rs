//! `cargo xtask image`: an OCI image per function, written without a container daemon.
//!
//! One layer holds the binary at `/app/{function}`, the shared libraries it links (found by
//! `ldd`, copied to the paths the loader expects, so the image runs exactly the glibc the binary
//! was linked against), CA certificates, a non-root user and a writable `/tmp` (scratch space).
//! Reproducible: entries sorted, owners and modes fixed, times from `SOURCE_DATE_EPOCH` (default
//! 0), a gzip header without a time — the same binary always gives the same digests.
//! Push with `skopeo copy oci:target/oci/{function}:latest docker://REGISTRY/yds/{function}:TAG`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;
use flate2::{Compression, GzBuilder};
use local_stack::stack::FUNCTIONS;
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::paths;

const NON_ROOT: u64 = 65532;
const CA_BUNDLE: &str = "etc/ssl/certs/ca-certificates.crt";

/// What goes into the layer: a path inside the image and where its bytes come from.
enum Entry {
    Dir { mode: u32 },
    File { bytes: Vec<u8>, mode: u32 },
}

/// A written image: where its layout is and the digest of its manifest.
pub struct Image {
    pub layout: PathBuf,
    pub manifest_digest: String,
}

/// `cargo xtask image [--debug] [--out DIR] [FUNCTION...]`.
#[derive(Debug, clap::Args)]
pub struct ImageArgs {
    /// Image the debug builds instead of the release ones.
    #[arg(long)]
    debug: bool,
    /// Where the OCI layouts go (default: `target/oci`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// The functions to image (default: all).
    #[arg(value_parser = clap::builder::PossibleValuesParser::new(FUNCTIONS))]
    functions: Vec<String>,
}

pub fn run(args: ImageArgs) -> anyhow::Result<()> {
    let release = !args.debug;
    let out = args.out.unwrap_or_else(|| paths::target_dir().join("oci"));
    let mut names = args.functions;
    if names.is_empty() {
        names = FUNCTIONS.iter().map(|s| s.to_string()).collect();
    }
    let mut cargo = paths::cargo();
    cargo.arg("build");
    if release {
        cargo.arg("--release");
    }
    for name in &names {
        cargo.args(["-p", name, "--bin", name]);
    }
    anyhow::ensure!(cargo.status().context("running cargo build")?.success(), "cargo build failed");
    let bin_dir = paths::target_dir().join(if release { "release" } else { "debug" });
    let epoch = std::env::var("SOURCE_DATE_EPOCH").ok().and_then(|v| v.parse().ok()).unwrap_or(0);
    for name in &names {
        let image = write_image(&bin_dir.join(name), name, &out.join(name), epoch)?;
        println!("{name}: {} ({})", image.layout.display(), image.manifest_digest);
    }
    Ok(())
}

/// Writes the OCI image layout of `function`'s `binary` into `layout` (replacing it).
pub fn write_image(binary: &Path, function: &str, layout: &Path, epoch: u64) -> anyhow::Result<Image> {
    let entries = layer_entries(binary, function)?;
    let tar = layer_tar(&entries, epoch)?;
    let diff_id = sha256(&tar);
    let mut gz = GzBuilder::new().mtime(0).write(Vec::new(), Compression::best());
    gz.write_all(&tar)?;
    let layer = gz.finish()?;

    let created = "1970-01-01T00:00:00Z";
    let config = json!({
        "architecture": "amd64",
        "os": "linux",
        "created": created,
        "config": {
            "User": format!("{NON_ROOT}:{NON_ROOT}"),
            "Entrypoint": [format!("/app/{function}")],
            "Env": ["PORT=8080", format!("SSL_CERT_FILE=/{CA_BUNDLE}"), "YDS_SCRATCH_DIR=/tmp"],
            "ExposedPorts": {"8080/tcp": {}},
            "WorkingDir": "/tmp",
            "Labels": {"org.opencontainers.image.title": format!("yds-{function}")},
        },
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "cargo xtask image"}],
    });
    let config = serde_json::to_vec(&config)?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": descriptor("application/vnd.oci.image.config.v1+json", &config),
        "layers": [descriptor("application/vnd.oci.image.layer.v1.tar+gzip", &layer)],
    });
    let manifest = serde_json::to_vec(&manifest)?;
    let mut manifest_descriptor = descriptor("application/vnd.oci.image.manifest.v1+json", &manifest);
    manifest_descriptor["annotations"] = json!({"org.opencontainers.image.ref.name": "latest"});
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_descriptor],
    });

    if layout.exists() {
        std::fs::remove_dir_all(layout)?;
    }
    let blobs = layout.join("blobs/sha256");
    std::fs::create_dir_all(&blobs)?;
    for blob in [&layer, &config, &manifest] {
        std::fs::write(blobs.join(hex_sha256(blob)), blob)?;
    }
    std::fs::write(layout.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&index)?)?;
    Ok(Image { layout: layout.to_path_buf(), manifest_digest: sha256(&manifest) })
}

fn layer_entries(binary: &Path, function: &str) -> anyhow::Result<BTreeMap<String, Entry>> {
    let mut entries = BTreeMap::new();
    let read = |path: &Path| std::fs::read(path).with_context(|| format!("reading {}", path.display()));
    entries.insert(format!("app/{function}"), Entry::File { bytes: read(binary)?, mode: 0o755 });
    for library in linked_libraries(binary)? {
        let inside = library.to_str().context("library path is UTF-8")?.trim_start_matches('/').to_owned();
        entries.insert(inside, Entry::File { bytes: read(&library)?, mode: 0o755 });
    }
    if Path::new("/").join(CA_BUNDLE).is_file() {
        entries.insert(CA_BUNDLE.into(), Entry::File { bytes: read(&Path::new("/").join(CA_BUNDLE))?, mode: 0o644 });
    }
    let passwd = format!("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:{NON_ROOT}:{NON_ROOT}::/tmp:/sbin/nologin\n");
    let group = format!("root:x:0:\nnonroot:x:{NON_ROOT}:\n");
    entries.insert("etc/passwd".into(), Entry::File { bytes: passwd.into_bytes(), mode: 0o644 });
    entries.insert("etc/group".into(), Entry::File { bytes: group.into_bytes(), mode: 0o644 });
    entries.insert("etc/nsswitch.conf".into(), Entry::File { bytes: b"hosts: files dns\n".to_vec(), mode: 0o644 });
    entries.insert("tmp".into(), Entry::Dir { mode: 0o1777 });
    // Every parent folder of every file, so the layer unpacks anywhere.
    let parents: Vec<String> = entries
        .keys()
        .flat_map(|path| {
            let parts: Vec<&str> = path.split('/').collect();
            (1..parts.len()).map(move |n| parts[..n].join("/")).collect::<Vec<_>>()
        })
        .collect();
    for parent in parents {
        entries.entry(parent).or_insert(Entry::Dir { mode: 0o755 });
    }
    Ok(entries)
}

/// The shared libraries `binary` loads (the dynamic loader included), as `ldd` resolves them.
fn linked_libraries(binary: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let output = Command::new("ldd").arg(binary).output().context("running ldd")?;
    let text = String::from_utf8_lossy(&output.stdout);
    if text.contains("not a dynamic executable") || text.contains("statically linked") {
        return Ok(Vec::new());
    }
    anyhow::ensure!(output.status.success(), "ldd {} failed: {text}", binary.display());
    let mut libraries = Vec::new();
    for line in text.lines() {
        // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
        let path = match line.split_once("=>") {
            Some((_, resolved)) => resolved.split_whitespace().next(),
            None => line.split_whitespace().next().filter(|p| p.starts_with('/')),
        };
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            libraries.push(PathBuf::from(path));
        }
    }
    Ok(libraries)
}

fn layer_tar(entries: &BTreeMap<String, Entry>, epoch: u64) -> anyhow::Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, entry) in entries {
        let mut header = tar::Header::new_ustar();
        header.set_mtime(epoch);
        header.set_uid(0);
        header.set_gid(0);
        match entry {
            Entry::Dir { mode } => {
                header.set_entry_type(tar::EntryType::Directory);
                header.set_mode(*mode);
                header.set_size(0);
                tar.append_data(&mut header, format!("{path}/"), std::io::empty())?;
            }
            Entry::File { bytes, mode } => {
                header.set_entry_type(tar::EntryType::Regular);
                header.set_mode(*mode);
                header.set_size(bytes.len() as u64);
                tar.append_data(&mut header, path, bytes.as_slice())?;
            }
        }
    }
    Ok(tar.into_inner()?)
}

fn descriptor(media_type: &str, blob: &[u8]) -> serde_json::Value {
    json!({"mediaType": media_type, "digest": sha256(blob), "size": blob.len()})
}

fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex_sha256(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads a blob of the layout by digest, checking that its bytes have that digest.
    fn blob(layout: &Path, digest: &str) -> Vec<u8> {
        let bytes = std::fs::read(layout.join("blobs/sha256").join(digest.trim_start_matches("sha256:"))).unwrap();
        assert_eq!(sha256(&bytes), digest, "a blob's name is its digest");
        bytes
    }

    /// The function binary `cargo xtask test` built; images of it are what the test checks.
    fn built(function: &str) -> PathBuf {
        let binary = paths::bin_dir().join(function);
        assert!(binary.is_file(), "{} missing: run through `cargo xtask test`", binary.display());
        binary
    }

    #[test]
    fn images_are_reproducible_and_their_layer_runs_the_function() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_image(&built("status"), "status", &dir.path().join("a"), 0).unwrap();
        let second = write_image(&built("status"), "status", &dir.path().join("b"), 0).unwrap();
        assert_eq!(first.manifest_digest, second.manifest_digest, "same binary, same image");

        // Walk the layout as a registry client would: index → manifest → config and layer.
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(first.layout.join("index.json")).unwrap()).unwrap();
        let manifest_digest = index["manifests"][0]["digest"].as_str().unwrap();
        assert_eq!(manifest_digest, first.manifest_digest);
        let manifest: serde_json::Value = serde_json::from_slice(&blob(&first.layout, manifest_digest)).unwrap();
        let config: serde_json::Value =
            serde_json::from_slice(&blob(&first.layout, manifest["config"]["digest"].as_str().unwrap())).unwrap();
        assert_eq!(config["config"]["Entrypoint"], json!(["/app/status"]));
        assert_eq!(config["config"]["User"], "65532:65532", "not root");
        let layer = blob(&first.layout, manifest["layers"][0]["digest"].as_str().unwrap());
        let mut tar = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(layer.as_slice()), &mut tar).unwrap();
        assert_eq!(config["rootfs"]["diff_ids"][0], sha256(&tar), "diff_id is the uncompressed layer's digest");

        // Unpack the layer and run the function with the image's own loader and libraries.
        let root = dir.path().join("rootfs");
        tar::Archive::new(tar.as_slice()).unpack(&root).unwrap();
        let loader = std::fs::read_dir(root.join("lib64")).unwrap().next().unwrap().unwrap().path();
        let library_path =
            ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu"].map(|d| root.join(d).display().to_string()).join(":");
        let port = local_stack::free_port();
        let uri = std::env::var("YDS_TEST_MONGODB_URI").expect("run through `cargo xtask test`");
        let mut child = Command::new(loader)
            .args(["--inhibit-cache", "--library-path", &library_path])
            .arg(root.join("app/status"))
            .env_clear()
            .env("PORT", port.to_string())
            .env("MONGODB_URI", uri)
            .env("YDS_DB_NAME", "image_test")
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let mut status = None;
        for _ in 0..200 {
            status = crate::measure::healthz(port);
            if status.is_some() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        child.kill().unwrap();
        let _ = child.wait();
        assert_eq!(status, Some(200), "the image's function answers /healthz");
    }
}
