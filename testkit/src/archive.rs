//! Packing a directory into the archives users upload: `.zip`, `.tar.gz` and `.tar`.
//!
//! Members are the regular files under the source directory, named by their path relative to
//! it with `/` separators, in sorted order, with fixed timestamps and permissions, so the same
//! tree always gives the same archive bytes. Folders get no entries of their own. File contents
//! are streamed, never read whole, so multi-gigabyte benchmark archives are fine.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::fs::list_files;

/// Modification time written into every tar member: 2023-11-14T22:13:20Z.
const TAR_MTIME: u64 = 1_700_000_000;

/// Writes `out` as a deflate ZIP of the files under `src_dir`.
pub fn pack_zip(src_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let files = members(src_dir, out)?;
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let mut zip = zip::ZipWriter::new(BufWriter::new(file));
    for (name, path) in files {
        let size = std::fs::metadata(&path)?.len();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .last_modified_time(zip::DateTime::default())
            .unix_permissions(0o644)
            .large_file(size >= u32::MAX as u64);
        zip.start_file(name.as_str(), options).with_context(|| format!("adding {name} to {}", out.display()))?;
        let mut input = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        io::copy(&mut input, &mut zip).with_context(|| format!("packing {}", path.display()))?;
    }
    zip.finish().context("finishing ZIP")?.flush().context("writing ZIP")?;
    Ok(())
}

/// Writes `out` as a gzip-compressed tar of the files under `src_dir`, in the same order as
/// [`pack_zip`].
pub fn pack_tar_gz(src_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let files = members(src_dir, out)?;
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    let gz = flate2::write::GzEncoder::new(BufWriter::new(file), flate2::Compression::default());
    let gz = write_tar(gz, &files)?;
    gz.finish().context("finishing gzip")?.flush().context("writing tar.gz")?;
    Ok(())
}

/// Writes `out` as an uncompressed tar of the files under `src_dir`.
pub fn pack_tar(src_dir: &Path, out: &Path) -> anyhow::Result<()> {
    let files = members(src_dir, out)?;
    let file = File::create(out).with_context(|| format!("creating {}", out.display()))?;
    write_tar(BufWriter::new(file), &files)?.flush().context("writing tar")?;
    Ok(())
}

/// The sorted members, without `out` itself when it is inside `src_dir`.
fn members(src_dir: &Path, out: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let files = list_files(src_dir).with_context(|| format!("listing {}", src_dir.display()))?;
    let out_abs = out
        .parent()
        .map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p })
        .and_then(|p| p.canonicalize().ok())
        .zip(out.file_name())
        .map(|(dir, name)| dir.join(name));
    Ok(files
        .into_iter()
        .filter(|(_, path)| match &out_abs {
            Some(out_abs) if path.file_name() == out_abs.file_name() => {
                path.canonicalize().ok().as_ref() != Some(out_abs)
            }
            _ => true,
        })
        .collect())
}

fn write_tar<W: Write>(w: W, files: &[(String, PathBuf)]) -> anyhow::Result<W> {
    let mut builder = tar::Builder::new(w);
    for (name, path) in files {
        let input = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(input.metadata()?.len());
        header.set_mode(0o644);
        header.set_mtime(TAR_MTIME);
        header.set_uid(0);
        header.set_gid(0);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, name, input).with_context(|| format!("packing {}", path.display()))?;
    }
    builder.into_inner().context("finishing tar")
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;
    use crate::dataset::{generate, DatasetSpec};

    fn expected(dir: &Path) -> Vec<(String, Vec<u8>)> {
        list_files(dir).unwrap().into_iter().map(|(name, path)| (name, std::fs::read(path).unwrap())).collect()
    }

    fn read_tar<R: Read>(r: R) -> Vec<(String, Vec<u8>)> {
        let mut archive = tar::Archive::new(r);
        archive
            .entries()
            .unwrap()
            .map(|entry| {
                let mut entry = entry.unwrap();
                let name = entry.path().unwrap().to_str().unwrap().to_owned();
                let mut bytes = Vec::new();
                entry.read_to_end(&mut bytes).unwrap();
                (name, bytes)
            })
            .collect()
    }

    fn fixture(name: &str) -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!("yds-testkit-archive-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let src = base.join("src");
        let spec = DatasetSpec { top_folder: Some("my dataset".into()), ..DatasetSpec::small(21) };
        generate(&src, &spec).unwrap();
        (base, src)
    }

    #[test]
    fn zip_round_trip_keeps_names_order_and_bytes() {
        let (base, src) = fixture("zip");
        let out = base.join("ds.zip");
        pack_zip(&src, &out).unwrap();
        let want = expected(&src);
        assert!(want.iter().any(|(n, _)| n == "my dataset/data.yaml"));
        assert!(want.windows(2).all(|w| w[0].0 < w[1].0));

        let mut zip = zip::ZipArchive::new(File::open(&out).unwrap()).unwrap();
        let mut got = Vec::new();
        for i in 0..zip.len() {
            let mut member = zip.by_index(i).unwrap();
            assert_eq!(member.compression(), zip::CompressionMethod::Deflated);
            let name = member.name().unwrap().into_owned();
            let mut bytes = Vec::new();
            member.read_to_end(&mut bytes).unwrap();
            got.push((name, bytes));
        }
        assert_eq!(got, want);

        // Deterministic bytes.
        let again = base.join("again.zip");
        pack_zip(&src, &again).unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&again).unwrap());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn tar_gz_and_tar_round_trip_in_the_same_order() {
        let (base, src) = fixture("tar");
        let want = expected(&src);

        let tgz = base.join("ds.tar.gz");
        pack_tar_gz(&src, &tgz).unwrap();
        let got = read_tar(flate2::read::GzDecoder::new(File::open(&tgz).unwrap()));
        assert_eq!(got, want);

        let tar = base.join("ds.tar");
        pack_tar(&src, &tar).unwrap();
        let got = read_tar(File::open(&tar).unwrap());
        assert_eq!(got, want);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn an_archive_written_inside_its_source_does_not_contain_itself() {
        let (base, src) = fixture("inside");
        let want = expected(&src);
        let out = src.join("self.tar");
        pack_tar(&src, &out).unwrap();
        pack_tar(&src, &out).unwrap();
        let got = read_tar(File::open(&out).unwrap());
        assert_eq!(got, want);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
