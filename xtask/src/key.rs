//! `cargo xtask key create --tenant T [--label L]` and `cargo xtask key revoke --prefix P`:
//! API keys stored hashed in the MongoDB at `MONGODB_URI` (database `YDS_DB_NAME`, default
//! `yds`) — the local stack's (`serve` prints its URI) or production's (Atlas, see the README).

use anyhow::{bail, Context};

const USAGE: &str = "usage: cargo xtask key create --tenant T [--label L] | cargo xtask key revoke --prefix P";

pub async fn run(args: &[String]) -> anyhow::Result<()> {
    let (command, options) = args.split_first().context(USAGE)?;
    let mut tenant = None;
    let mut label = String::from("issued by cargo xtask key");
    let mut prefix = None;
    let mut iter = options.iter();
    while let Some(arg) = iter.next() {
        let mut value = || iter.next().cloned().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--tenant" => tenant = Some(value()?),
            "--label" => label = value()?,
            "--prefix" => prefix = Some(value()?),
            other => bail!("unknown option `{other}`\n{USAGE}"),
        }
    }
    let uri = std::env::var("MONGODB_URI").context("set MONGODB_URI to the database the functions use")?;
    let db_name = std::env::var("YDS_DB_NAME").unwrap_or_else(|_| "yds".into());
    let db = yds_store::Db::connect(&uri, &db_name).await?;
    db.ensure_indexes().await?;
    match command.as_str() {
        "create" => {
            let tenant = tenant.filter(|t| !t.trim().is_empty()).context("--tenant is required")?;
            let key = yds_edge::access::create(&db, &tenant, &label).await?;
            eprintln!(
                "API key for tenant {tenant} (shown once; only its hash is stored; revoke with --prefix {}):",
                &key[..12]
            );
            println!("{key}");
        }
        "revoke" => {
            let prefix = prefix.context("--prefix is required")?;
            let revoked = yds_edge::access::revoke(&db, &prefix).await?;
            println!("revoked {revoked} key(s); instances stop accepting them within a minute");
        }
        other => bail!("unknown key command `{other}`\n{USAGE}"),
    }
    Ok(())
}
