//! What an upload reads from: an archive file as it is, or a folder packed on the fly by
//! [`crate::pack`] on a blocking thread, through a small in-memory pipe.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, Result};

/// The pipe between the packing thread and the upload: small, the piece is the buffer.
const PIPE: usize = 256 * 1024;

/// A byte source read once, front to back.
pub trait Source {
    /// Appends to `buf` until it holds `want` bytes or the source ends. Returns false at the
    /// end, after checking the source ended well (a folder's packing did not fail, a file did
    /// not change size).
    fn fill(&mut self, buf: &mut BytesMut, want: usize) -> impl std::future::Future<Output = Result<bool>>;
}

/// Reads `reader` into `buf` up to `want` bytes; false when it ended first.
async fn fill_from<R: AsyncRead + Unpin>(reader: &mut R, buf: &mut BytesMut, want: usize) -> std::io::Result<bool> {
    while buf.len() < want {
        let room = (want - buf.len()) as u64;
        if (&mut *reader).take(room).read_buf(buf).await? == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// An archive file, uploaded as it is.
pub struct FileSource {
    file: tokio::fs::File,
    path: PathBuf,
    size: u64,
    read: u64,
}

impl FileSource {
    pub async fn open(path: &Path) -> Result<FileSource> {
        let file =
            tokio::fs::File::open(path).await.map_err(|e| Error::io(format!("opening {}", path.display()), e))?;
        let size = file.metadata().await.map_err(|e| Error::io(format!("reading {}", path.display()), e))?.len();
        Ok(FileSource { file, path: path.to_owned(), size, read: 0 })
    }

    /// The file's size when it was opened.
    pub fn size(&self) -> u64 {
        self.size
    }
}

impl Source for FileSource {
    async fn fill(&mut self, buf: &mut BytesMut, want: usize) -> Result<bool> {
        let before = buf.len();
        let more = fill_from(&mut self.file, buf, want)
            .await
            .map_err(|e| Error::io(format!("reading {}", self.path.display()), e))?;
        self.read += (buf.len() - before) as u64;
        if !more && self.read != self.size {
            return Err(Error::msg(format!("{} changed size while it was being uploaded", self.path.display())));
        }
        Ok(more)
    }
}

/// A folder, packed into a tar stream while it is read.
pub struct PackSource {
    reader: tokio::io::DuplexStream,
    packing: Option<tokio::task::JoinHandle<std::io::Result<u64>>>,
    root: PathBuf,
}

impl PackSource {
    /// Starts packing `root` on a blocking thread.
    pub fn start(root: &Path) -> PackSource {
        let (writer, reader) = tokio::io::duplex(PIPE);
        let folder = root.to_owned();
        let packing = tokio::task::spawn_blocking(move || {
            let bridge = tokio_util::io::SyncIoBridge::new(writer);
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, bridge);
            let written = crate::pack::write(&folder, &mut out)?;
            std::io::Write::flush(&mut out)?;
            Ok(written)
        });
        PackSource { reader, packing: Some(packing), root: root.to_owned() }
    }
}

impl Source for PackSource {
    async fn fill(&mut self, buf: &mut BytesMut, want: usize) -> Result<bool> {
        let more = fill_from(&mut self.reader, buf, want)
            .await
            .map_err(|e| Error::io(format!("packing {}", self.root.display()), e))?;
        if !more {
            // The pipe ended: the archive is whole only if packing finished without error.
            if let Some(packing) = self.packing.take() {
                match packing.await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Err(Error::io(format!("packing {}", self.root.display()), e)),
                    Err(e) => return Err(Error::msg(format!("packing {} stopped: {e}", self.root.display()))),
                }
            }
        }
        Ok(more)
    }
}

/// Bytes in memory, for tests.
#[cfg(test)]
pub struct Memory {
    bytes: std::io::Cursor<Vec<u8>>,
}

#[cfg(test)]
impl Memory {
    pub fn new(bytes: Vec<u8>) -> Memory {
        Memory { bytes: std::io::Cursor::new(bytes) }
    }
}

#[cfg(test)]
impl Source for Memory {
    async fn fill(&mut self, buf: &mut BytesMut, want: usize) -> Result<bool> {
        Ok(fill_from(&mut self.bytes, buf, want).await.unwrap())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread")]
    async fn a_packed_folder_streams_the_same_bytes_as_packing_it_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        for n in 0..40 {
            let path = dir.path().join(format!("images/train/{n:03}.jpg"));
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, vec![n as u8; 10_000 + n * 1000]).unwrap();
        }
        let mut expected = Vec::new();
        crate::pack::write(dir.path(), &mut expected).unwrap();
        let mut source = PackSource::start(dir.path());
        let mut streamed = Vec::new();
        loop {
            let mut buf = BytesMut::new();
            let more = source.fill(&mut buf, 100_000).await.unwrap();
            streamed.extend_from_slice(&buf);
            if !more {
                break;
            }
            assert_eq!(buf.len(), 100_000, "a fill that does not end the source is full");
        }
        assert_eq!(streamed, expected);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_folder_that_cannot_be_packed_fails_the_source_instead_of_ending_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut source = PackSource::start(&dir.path().join("missing"));
        // (tar's builder ends the archive when dropped, even after an error: a few zero
        // blocks may come first; what matters is that the end is an error, not an end.)
        let err = loop {
            let mut buf = BytesMut::new();
            match source.fill(&mut buf, 1000).await {
                Ok(true) => continue,
                Ok(false) => panic!("a failed packing ended the source cleanly"),
                Err(err) => break err,
            }
        };
        assert!(err.to_string().starts_with("packing "), "{err}");
    }
}
