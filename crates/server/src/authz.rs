//! Who may see and do what: one function per kind of resource, called by every handler before
//! it reads or acts. The rules:
//!
//! - A **dealer user** sees the tasks of their own dealer whose candidate roles they hold or
//!   that are assigned to them, and acts on them; sees every instance of their dealer; starts
//!   instances and sends messages for their dealer.
//! - A **dealer manager** (a user holding one of the server's manager roles) and a dealer
//!   **administrator** also read every other task of their dealer, its workload and its KPIs;
//!   acting on a task still needs one of its roles or being its assignee.
//! - A **headquarters user** reads across dealers (tasks, instances, audit trails, traces) but
//!   every action on a dealer's task or instance is `403 Forbidden`.
//! - **Administrators** manage the users and tokens of their organisation (headquarters
//!   administrators: of every organisation), and cancel instances and retry or skip incidents
//!   of their own dealer.
//! - **Packs**: headquarters administrators publish; every user reads what is published;
//!   dealer administrators install for their own dealer; a dealer's installations are read by
//!   its users and by headquarters; the compliance report is for headquarters.
//! - Anything of another dealer is `404 Not Found` to a dealer user, whatever the endpoint: its
//!   existence is not revealed.

use store::TaskRow;

use crate::auth::Principal;
use crate::error::Error;

/// What a principal may do with a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Not visible: answer 404.
    Hidden,
    /// Visible, not to act on: actions answer 403.
    Read,
    /// Visible and actionable.
    Act,
}

impl Access {
    /// `Ok` if the resource may be read.
    pub fn read(self) -> Result<(), Error> {
        match self {
            Access::Hidden => Err(Error::NotFound),
            Access::Read | Access::Act => Ok(()),
        }
    }

    /// `Ok` if the resource may be acted on.
    pub fn act(self) -> Result<(), Error> {
        match self {
            Access::Hidden => Err(Error::NotFound),
            Access::Read => Err(Error::Forbidden("you may read this but not act on it".into())),
            Access::Act => Ok(()),
        }
    }
}

/// A task: dealer users of its dealer holding a candidate role (or its assignee) act; dealer
/// administrators and managers of its dealer read; headquarters reads.
pub fn task(p: &Principal, t: &TaskRow) -> Access {
    task_of(p, &t.dealer, t.assignee.as_deref(), &t.roles)
}

/// As [`task`], from the parts that decide: the task's dealer, assignee and candidate roles.
pub fn task_of(p: &Principal, dealer: &str, assignee: Option<&str>, roles: &[String]) -> Access {
    if p.is_hq() {
        return Access::Read;
    }
    if dealer != p.organisation {
        return Access::Hidden;
    }
    if assignee == Some(p.user.as_str()) || roles.iter().any(|r| p.roles.contains(r)) {
        Access::Act
    } else if p.admin || p.manager {
        Access::Read
    } else {
        Access::Hidden
    }
}

/// The check a task completion makes in the writer lane, against the instance as it stands
/// ([`runtime::Gate`]): the same answers as reading the task first, without the read.
pub fn completion_gate(p: &Principal, task: &str) -> runtime::Gate {
    let (p, task) = (p.clone(), task.to_owned());
    runtime::Gate(std::sync::Arc::new(move |instance: &machine::Instance| match instance.task(&task) {
        Some(t) => match task_of(&p, &instance.dealer, t.assignee.as_deref(), &t.roles) {
            Access::Act => Ok(()),
            Access::Read => Err(runtime::Denied::Forbidden("you may read this but not act on it".into())),
            Access::Hidden => Err(runtime::Denied::Hidden),
        },
        None if self::instance(&p, &instance.dealer) != Access::Hidden => Err(runtime::Denied::Conflict(format!(
            "the task `{task}` is not open (completed, cancelled or never opened)"
        ))),
        None => Err(runtime::Denied::Hidden),
    }))
}

/// An instance (and its audit trail, trace and graph): its dealer's users read; headquarters
/// reads. Acting on an instance goes through its tasks, or [`instance_admin`].
pub fn instance(p: &Principal, dealer: &str) -> Access {
    if p.is_hq() {
        Access::Read
    } else if dealer == p.organisation {
        Access::Act
    } else {
        Access::Hidden
    }
}

/// Cancelling an instance, retrying or skipping its incidents: administrators of its dealer.
pub fn instance_admin(p: &Principal, dealer: &str) -> Result<(), Error> {
    instance(p, dealer).act().map_err(|e| match e {
        Error::Forbidden(_) => Error::Forbidden("headquarters cannot act on a dealer's instance".into()),
        other => other,
    })?;
    if p.admin { Ok(()) } else { Err(Error::Forbidden("only an administrator of the dealer may do this".into())) }
}

/// Starting instances and sending messages: for one's own dealer; headquarters may not.
pub fn own_dealer(p: &Principal) -> Result<&str, Error> {
    if p.is_hq() {
        Err(Error::Forbidden("headquarters cannot act on a dealer's work".into()))
    } else {
        Ok(&p.organisation)
    }
}

/// The dealer a list reads: a dealer user's own (naming another is 404); headquarters must
/// name one (for tasks) or may read all (for instances: `None`).
pub fn list_dealer(p: &Principal, asked: Option<&str>, required_for_hq: bool) -> Result<Option<String>, Error> {
    match (p.is_hq(), asked) {
        (false, Some(d)) if d != p.organisation => Err(Error::NotFound),
        (false, _) => Ok(Some(p.organisation.clone())),
        (true, Some(d)) => Ok(Some(d.to_string())),
        (true, None) if required_for_hq => {
            Err(Error::BadRequest("headquarters must name the dealer to read (`dealer=`)".into()))
        }
        (true, None) => Ok(None),
    }
}

/// Reading a dealer's whole open work (every task, the workload, the KPIs): its managers and
/// administrators read their own dealer (another is 404); headquarters reads any dealer, or
/// every dealer (`None`).
pub fn dealer_overview(p: &Principal, asked: Option<&str>) -> Result<Option<String>, Error> {
    if p.is_hq() {
        return Ok(asked.map(str::to_string));
    }
    if asked.is_some_and(|d| d != p.organisation) {
        return Err(Error::NotFound);
    }
    if p.manager || p.admin {
        Ok(Some(p.organisation.clone()))
    } else {
        Err(Error::Forbidden("only the dealer's managers and administrators read its whole open work".into()))
    }
}

/// Managing an organisation's users and tokens: its administrators, and headquarters
/// administrators. Another organisation is 404 to a dealer administrator.
pub fn manage(p: &Principal, organisation: &str) -> Result<(), Error> {
    if !p.admin {
        return Err(Error::Forbidden("only an administrator may manage users and tokens".into()));
    }
    if p.is_hq() || p.organisation == organisation { Ok(()) } else { Err(Error::NotFound) }
}

/// Creating organisations: headquarters administrators.
pub fn manage_organisations(p: &Principal) -> Result<(), Error> {
    if p.admin && p.is_hq() {
        Ok(())
    } else {
        Err(Error::Forbidden("only a headquarters administrator may create organisations".into()))
    }
}

/// Publishing packs: headquarters administrators.
pub fn publish_packs(p: &Principal) -> Result<(), Error> {
    if p.admin && p.is_hq() {
        Ok(())
    } else {
        Err(Error::Forbidden("only a headquarters administrator may publish packs".into()))
    }
}

/// Installing packs: administrators of a dealer, for their own dealer.
pub fn install_packs(p: &Principal) -> Result<&str, Error> {
    if p.is_hq() {
        Err(Error::Forbidden("headquarters publishes packs; a dealer's administrator installs them".into()))
    } else if !p.admin {
        Err(Error::Forbidden("only an administrator of the dealer may install packs".into()))
    } else {
        Ok(&p.organisation)
    }
}

/// A dealer's installations: its users read; headquarters reads every dealer's.
pub fn installation(p: &Principal, dealer: &str) -> Access {
    if p.is_hq() || dealer == p.organisation { Access::Read } else { Access::Hidden }
}

/// The compliance report across dealers: headquarters.
pub fn compliance(p: &Principal) -> Result<(), Error> {
    if p.is_hq() { Ok(()) } else { Err(Error::Forbidden("the compliance report is for headquarters".into())) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dto::{Lang, OrgKind};

    fn user(org: &str, kind: OrgKind, roles: &[&str], admin: bool) -> Principal {
        Principal {
            user: format!("{org}.u"),
            name: "u".into(),
            organisation: org.into(),
            kind,
            roles: roles.iter().map(|r| r.to_string()).collect(),
            admin,
            manager: kind == OrgKind::Dealer && roles.contains(&"after_sales_manager"),
            lang: Lang::En,
            time_zone: "UTC".into(),
        }
    }

    fn task_row(dealer: &str, roles: &[&str], assignee: Option<&str>) -> TaskRow {
        TaskRow {
            id: "i-t1".into(),
            instance_id: "i".into(),
            dealer: dealer.into(),
            process_id: "p".into(),
            step: "s".into(),
            title_zh: "".into(),
            title_en: "".into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            assignee: assignee.map(str::to_string),
            priority: "normal".into(),
            due_at: None,
            created_at: 0,
            business_key: None,
            form: None,
        }
    }

    #[test]
    fn dealer_users_act_only_on_their_dealers_tasks_in_their_roles() {
        let advisor = user("a", OrgKind::Dealer, &["advisor"], false);
        assert_eq!(task(&advisor, &task_row("a", &["advisor"], None)), Access::Act);
        assert_eq!(task(&advisor, &task_row("a", &["technician"], None)), Access::Hidden);
        assert_eq!(task(&advisor, &task_row("a", &["technician"], Some("a.u"))), Access::Act);
        assert_eq!(task(&advisor, &task_row("b", &["advisor"], None)), Access::Hidden);
        let admin = user("a", OrgKind::Dealer, &[], true);
        assert_eq!(task(&admin, &task_row("a", &["technician"], None)), Access::Read);
        assert_eq!(task(&admin, &task_row("b", &["technician"], None)), Access::Hidden);
    }

    #[test]
    fn headquarters_reads_everything_and_acts_on_nothing() {
        let hq = user("hq", OrgKind::Hq, &["advisor"], true);
        assert_eq!(task(&hq, &task_row("a", &["advisor"], None)), Access::Read);
        assert!(matches!(task(&hq, &task_row("a", &["advisor"], None)).act(), Err(Error::Forbidden(_))));
        assert!(matches!(instance_admin(&hq, "a"), Err(Error::Forbidden(_))));
        assert!(matches!(own_dealer(&hq), Err(Error::Forbidden(_))));
        assert!(manage(&hq, "a").is_ok());
    }

    #[test]
    fn administration_stays_within_the_organisation() {
        let admin = user("a", OrgKind::Dealer, &[], true);
        let clerk = user("a", OrgKind::Dealer, &["advisor"], false);
        assert!(manage(&admin, "a").is_ok());
        assert!(matches!(manage(&admin, "b"), Err(Error::NotFound)));
        assert!(matches!(manage(&clerk, "a"), Err(Error::Forbidden(_))));
        assert!(instance_admin(&admin, "a").is_ok());
        assert!(matches!(instance_admin(&admin, "b"), Err(Error::NotFound)));
        assert!(matches!(instance_admin(&clerk, "a"), Err(Error::Forbidden(_))));
        assert!(matches!(list_dealer(&clerk, Some("b"), true), Err(Error::NotFound)));
    }

    #[test]
    fn managers_read_their_dealers_tasks_and_act_only_in_their_roles() {
        let manager = user("a", OrgKind::Dealer, &["after_sales_manager"], false);
        assert_eq!(task(&manager, &task_row("a", &["technician"], None)), Access::Read);
        assert_eq!(task(&manager, &task_row("a", &["after_sales_manager"], None)), Access::Act);
        assert_eq!(task(&manager, &task_row("b", &["technician"], None)), Access::Hidden);
        assert_eq!(dealer_overview(&manager, None).unwrap().as_deref(), Some("a"));
        assert!(matches!(dealer_overview(&manager, Some("b")), Err(Error::NotFound)));
        let clerk = user("a", OrgKind::Dealer, &["service_advisor"], false);
        assert!(matches!(dealer_overview(&clerk, None), Err(Error::Forbidden(_))));
        let hq = user("hq", OrgKind::Hq, &[], false);
        assert_eq!(dealer_overview(&hq, None).unwrap(), None);
        assert_eq!(dealer_overview(&hq, Some("b")).unwrap().as_deref(), Some("b"));
    }
}
