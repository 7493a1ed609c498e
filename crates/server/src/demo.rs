//! The demo directory of `sopflow serve --demo`: dealers `demo` and `demo2`, headquarters
//! `hq`, one user per role of the catalogue in each dealer, a dealer administrator each, and a
//! headquarters reader and administrator; all with the password `demo` and a fresh token.
//!
//! Running it again changes nothing but the tokens: the previous demo tokens are revoked and
//! new ones issued (only their hashes are stored, so they cannot be shown again).

use store::Millis;
use store::org::{OrgStore, OrganisationRow, TokenRow, UserRow};

use crate::auth;
use crate::error::Error;
use crate::state::Catalogue;

/// The demo password.
pub const PASSWORD: &str = "demo";

/// The demo dealers.
pub const DEALERS: [&str; 2] = ["demo", "demo2"];

/// The demo dealers' parts stock (the reference inventory plugin's CSV): the parts the
/// standard pack's scenarios use, with `P-900` at 0 and the brake disc `P-130` missing, so that
/// a quotation can show a shortage and the parts purchase that follows (docs/walkthrough.md).
pub const STOCK_CSV: &str = "part_no,description,on_hand,location
P-100,Front brake pads,12,A-01
P-120,Brake hose,4,A-02
P-150,Wiper blades,20,A-03
P-200,Oil filter,30,B-01
P-210,Air filter,15,B-02
P-211,Cabin filter,15,B-03
P-300,Engine oil 5W-30 (4 L),40,C-01
P-400,Spark plug,24,C-02
P-500,Battery 60 Ah,3,D-01
P-600,Headlamp bulb,10,D-02
P-900,Gearbox control unit,0,E-01
";

/// A demo user and its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoUser {
    /// The user id (`demo.service_advisor`, `hq.viewer`, ...).
    pub id: String,
    /// The organisation.
    pub organisation: String,
    /// The roles held.
    pub roles: Vec<String>,
    /// An administrator.
    pub admin: bool,
    /// The bearer token issued now.
    pub token: String,
}

/// Creates what is missing of the demo directory and issues new tokens.
pub async fn ensure(org: &impl OrgStore, catalogue: &Catalogue, now: Millis) -> Result<Vec<DemoUser>, Error> {
    let orgs = [
        ("demo", "dealer", "Demo dealer 演示經銷商"),
        ("demo2", "dealer", "Second demo dealer 演示經銷商二"),
        ("hq", "hq", "Brand headquarters 品牌總部"),
    ];
    for (id, kind, name) in orgs {
        org.put_organisation(&OrganisationRow {
            id: id.into(),
            kind: kind.into(),
            name: name.into(),
            time_zone: "Asia/Shanghai".into(),
            created_at: now,
        })
        .await?;
    }
    let mut wanted: Vec<(String, String, Vec<String>, bool)> = Vec::new();
    for dealer in DEALERS {
        for role in catalogue.roles().keys() {
            wanted.push((format!("{dealer}.{role}"), dealer.into(), vec![role.clone()], false));
        }
        wanted.push((format!("{dealer}.admin"), dealer.into(), Vec::new(), true));
    }
    wanted.push(("hq.viewer".into(), "hq".into(), Vec::new(), false));
    wanted.push(("hq.admin".into(), "hq".into(), Vec::new(), true));

    // One hash for every demo user: they share the password, and Argon2 is slow on purpose.
    let mut phc: Option<String> = None;
    let mut out = Vec::new();
    for (id, organisation, roles, admin) in wanted {
        if org.user(&id).await?.is_none() {
            if phc.is_none() {
                phc = Some(auth::hash_password(PASSWORD).map_err(|e| Error::Internal(e.to_string()))?);
            }
            org.put_user(&UserRow {
                id: id.clone(),
                organisation: organisation.clone(),
                name: id.clone(),
                roles: roles.clone(),
                admin,
                password_hash: phc.clone(),
                lang: None,
                active: true,
                created_at: now,
            })
            .await?;
        }
        for old in org.tokens(&id).await? {
            if old.label == "demo" && old.revoked_at.is_none() {
                org.revoke_token(&old.id, now).await?;
            }
        }
        let (token, hash, token_id) = auth::new_token()?;
        org.put_token(&TokenRow {
            id: token_id,
            hash,
            user_id: id.clone(),
            label: "demo".into(),
            created_at: now,
            expires_at: None,
            revoked_at: None,
        })
        .await?;
        out.push(DemoUser { id, organisation, roles, admin, token });
    }
    Ok(out)
}
