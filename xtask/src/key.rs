//! `cargo xtask key create --tenant T [--label L]` and `cargo xtask key revoke --prefix P`:
//! API keys stored hashed in the MongoDB at `MONGODB_URI` (database `YDS_DB_NAME`, default
//! `yds`) — the local stack's (`serve` prints its URI) or production's (Atlas, see the README).

use anyhow::Context;

/// `cargo xtask key create|revoke`.
#[derive(Debug, clap::Subcommand)]
pub enum KeyCommand {
    /// Issue a key for a tenant; it is printed once, and only its hash is stored.
    Create {
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "issued by cargo xtask key")]
        label: String,
    },
    /// Revoke the keys with this prefix (as `create` printed it).
    Revoke {
        #[arg(long)]
        prefix: String,
    },
}

pub async fn run(command: KeyCommand) -> anyhow::Result<()> {
    let uri = std::env::var("MONGODB_URI").context("set MONGODB_URI to the database the functions use")?;
    let db_name = std::env::var("YDS_DB_NAME").unwrap_or_else(|_| "yds".into());
    let db = yds_store::Db::connect(&uri, &db_name).await?;
    db.ensure_indexes().await?;
    match command {
        KeyCommand::Create { tenant, label } => {
            anyhow::ensure!(!tenant.trim().is_empty(), "--tenant must not be empty");
            let key = yds_edge::access::create(&db, &tenant, &label).await?;
            eprintln!(
                "API key for tenant {tenant} (shown once; only its hash is stored; revoke with --prefix {}):",
                &key[..12]
            );
            println!("{key}");
        }
        KeyCommand::Revoke { prefix } => {
            let revoked = yds_edge::access::revoke(&db, &prefix).await?;
            println!("revoked {revoked} key(s); instances stop accepting them within a minute");
        }
    }
    Ok(())
}
