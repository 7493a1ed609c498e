//! The directory from the command line, against `--db`: `sopflow org add|list`,
//! `sopflow user add|roles|list`, `sopflow token create|revoke|list`. The same rows the
//! server's admin API manages; a token is printed once and only its hash is stored.

use std::io::BufRead;
use std::process::ExitCode;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use store::org::{OrgStore, OrganisationRow, TokenRow, UserRow};
use store_sqlx::AnyOrgStore;

/// Where the database is.
#[derive(Debug, Args)]
pub struct Db {
    /// The database: `sqlite://path` or `postgres://...`.
    #[arg(long = "db", env = "DATABASE_URL", default_value = store_sqlx::DEFAULT_URL, global = true)]
    db: String,
    /// PostgreSQL: the schema to work in.
    #[arg(long, global = true)]
    pg_schema: Option<String>,
}

#[derive(Debug, Args)]
pub struct OrgArgs {
    #[command(subcommand)]
    command: OrgCommand,
    #[command(flatten)]
    db: Db,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Kind {
    Dealer,
    Hq,
}

#[derive(Debug, Subcommand)]
enum OrgCommand {
    /// Add a dealer or the headquarters.
    Add {
        /// The id (for a dealer: its dealer code).
        id: String,
        /// Dealer or headquarters.
        #[arg(long, value_enum, default_value = "dealer")]
        kind: Kind,
        /// The name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// The IANA time zone its days are counted in.
        #[arg(long, default_value = "Asia/Shanghai")]
        time_zone: String,
    },
    /// List the organisations.
    List,
}

#[derive(Debug, Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
    #[command(flatten)]
    db: Db,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Add a user to an organisation.
    Add {
        /// The user id (unique across organisations).
        id: String,
        /// The organisation.
        #[arg(long)]
        org: String,
        /// Roles, comma-separated (`service_advisor,technician`).
        #[arg(long, value_delimiter = ',', default_value = "")]
        roles: Vec<String>,
        /// An administrator of the organisation.
        #[arg(long)]
        admin: bool,
        /// The display name (default: the id).
        #[arg(long)]
        name: Option<String>,
        /// Read a password for logging in from standard input (one line).
        #[arg(long)]
        password: bool,
    },
    /// Replace a user's roles.
    Roles {
        /// The user id.
        id: String,
        /// Roles, comma-separated (empty: none).
        #[arg(long, value_delimiter = ',', default_value = "")]
        roles: Vec<String>,
        /// Make (true) or unmake (false) an administrator.
        #[arg(long)]
        admin: Option<bool>,
    },
    /// List users.
    List {
        /// Only of this organisation.
        #[arg(long)]
        org: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: TokenCommand,
    #[command(flatten)]
    db: Db,
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create an API token for a user and print it (once).
    Create {
        /// The user.
        #[arg(long)]
        user: String,
        /// What it is for.
        #[arg(long, default_value = "cli")]
        label: String,
        /// Days until it expires (default: never).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
    /// Revoke a token by its public id.
    Revoke {
        /// The token's public id (see `sopflow token list`).
        id: String,
    },
    /// List a user's tokens (without their secrets).
    List {
        /// The user.
        #[arg(long)]
        user: String,
    },
}

fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}

fn block_on<T>(db: &Db, f: impl AsyncFnOnce(AnyOrgStore) -> anyhow::Result<T>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(async {
            let options =
                store_sqlx::Options { max_connections: 2, pg_schema: db.pg_schema.clone(), ..Default::default() };
            let store = store_sqlx::open(&db.db, &options).await.with_context(|| format!("cannot open {}", db.db))?;
            let result = f(AnyOrgStore::for_store(&store)).await;
            store.close().await;
            result
        })
}

fn roles(list: &[String]) -> Vec<String> {
    list.iter().map(|r| r.trim().to_string()).filter(|r| !r.is_empty()).collect()
}

pub fn org(args: &OrgArgs) -> anyhow::Result<ExitCode> {
    block_on(&args.db, async |org| {
        match &args.command {
            OrgCommand::Add { id, kind, name, time_zone } => {
                if jiff::tz::TimeZone::get(time_zone).is_err() {
                    bail!("`{time_zone}` is not an IANA time zone");
                }
                let row = OrganisationRow {
                    id: id.clone(),
                    kind: match kind {
                        Kind::Dealer => "dealer".into(),
                        Kind::Hq => "hq".into(),
                    },
                    name: name.clone().unwrap_or_else(|| id.clone()),
                    time_zone: time_zone.clone(),
                    created_at: now_ms(),
                };
                if org.put_organisation(&row).await? {
                    println!("added {} `{id}`", row.kind);
                } else {
                    println!("`{id}` exists; unchanged");
                }
            }
            OrgCommand::List => {
                for o in org.organisations().await? {
                    println!("{:<20} {:<7} {:<16} {}", o.id, o.kind, o.time_zone, o.name);
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn user(args: &UserArgs) -> anyhow::Result<ExitCode> {
    block_on(&args.db, async |org| {
        match &args.command {
            UserCommand::Add { id, org: organisation, roles: r, admin, name, password } => {
                if org.organisation(organisation).await?.is_none() {
                    bail!("there is no organisation `{organisation}`; add it with `sopflow org add`");
                }
                if org.user(id).await?.is_some() {
                    bail!("the user `{id}` exists; change its roles with `sopflow user roles`");
                }
                let password_hash = if *password {
                    let mut line = String::new();
                    std::io::stdin().lock().read_line(&mut line).context("cannot read the password")?;
                    let pw = line.trim_end_matches(['\r', '\n']);
                    server::auth::check_policy(pw)?;
                    Some(server::auth::hash_password(pw)?)
                } else {
                    None
                };
                let row = UserRow {
                    id: id.clone(),
                    organisation: organisation.clone(),
                    name: name.clone().unwrap_or_else(|| id.clone()),
                    roles: roles(r),
                    admin: *admin,
                    password_hash,
                    lang: None,
                    active: true,
                    created_at: now_ms(),
                };
                org.put_user(&row).await?;
                println!("added `{id}` to `{organisation}` with roles [{}]", row.roles.join(", "));
            }
            UserCommand::Roles { id, roles: r, admin } => {
                let mut u = org.user(id).await?.ok_or_else(|| anyhow!("there is no user `{id}`"))?;
                u.roles = roles(r);
                if let Some(a) = admin {
                    u.admin = *a;
                }
                org.put_user(&u).await?;
                println!(
                    "`{id}` now holds [{}]{}",
                    u.roles.join(", "),
                    if u.admin { " and is an administrator" } else { "" }
                );
            }
            UserCommand::List { org: only } => {
                for u in org.users(only.as_deref()).await? {
                    println!(
                        "{:<32} {:<12} {}{}",
                        u.id,
                        u.organisation,
                        u.roles.join(","),
                        if u.admin { " (admin)" } else { "" }
                    );
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}

pub fn token(args: &TokenArgs) -> anyhow::Result<ExitCode> {
    block_on(&args.db, async |org| {
        match &args.command {
            TokenCommand::Create { user, label, expires_in_days } => {
                if org.user(user).await?.is_none() {
                    bail!("there is no user `{user}`");
                }
                let (token, hash, id) = server::auth::new_token()?;
                let now = now_ms();
                org.put_token(&TokenRow {
                    id: id.clone(),
                    hash,
                    user_id: user.clone(),
                    label: label.clone(),
                    created_at: now,
                    expires_at: expires_in_days.map(|d| now + i64::from(d) * 86_400_000),
                    revoked_at: None,
                })
                .await?;
                eprintln!("token `{id}` for `{user}` (shown once; keep it secret):");
                println!("{token}");
            }
            TokenCommand::Revoke { id } => {
                if org.revoke_token(id, now_ms()).await? {
                    println!("revoked `{id}`");
                } else {
                    bail!("there is no valid token `{id}`");
                }
            }
            TokenCommand::List { user } => {
                for t in org.tokens(user).await? {
                    let state = if t.revoked_at.is_some() { "revoked" } else { "valid" };
                    println!("{:<18} {:<8} {:<10} {}", t.id, state, t.label, server::views::time_ms(t.created_at));
                }
            }
        }
        Ok(ExitCode::SUCCESS)
    })
}
