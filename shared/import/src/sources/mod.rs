//! Import sources: which URLs an import may read, and reading them wherever they are.
//!
//! A job has one source (an archive or a folder holding the dataset) or three (the YAML and
//! an archive of each tree); each is a URL — `https://`, `http://`, `gs://bucket/object`, a
//! `gs://bucket/prefix/` folder, an upload's `upload://` or, in local mode, `file://`.
//!
//! - [`policy`]: which URLs are acceptable (the strict policy keeps imports off internal
//!   addresses).
//! - [`fetch`]: HTTP(S) by range or whole, every redirect checked.
//! - [`ranged`]: a source opened as a file read by range, a folder listed page by page, or an
//!   HTTP file whose server ignores ranges; and [`ranged::BlockReader`], the `Read + Seek` the
//!   archive walkers want.
//! - [`access`]: [`SourceAccess`], which opens a URL under the policy.
//! - [`members`]: one member's bytes, wherever its [`yds_store::Location`] says they are.
//! - [`uploads`]: `upload://` sources, archives uploaded to this deployment, resolved when an
//!   import is accepted.
//! - [`error`]: [`SourceError`], and whether trying again may help.

pub mod access;
pub mod error;
pub mod fetch;
pub mod members;
pub mod policy;
pub mod ranged;
pub mod uploads;

pub use access::SourceAccess;
pub use error::SourceError;
pub use members::{MemberReader, ReadError};
pub use ranged::{BlockReader, Folder, Opened, RangedFile};
