//! Who may do what: the table of act × role ([`allowed`]), the act each event records
//! ([`act_of`]) and which acts are signed. The bench refuses a forbidden act before it is
//! written (`kura-app`); the registry judges every event it takes by the same table against its
//! own projection of the site's users ([`Authority`]).

use crate::event::EventBody;
use crate::user::Role;
use serde::Serialize;

/// What a person does, as the authorisation table names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Act {
    /// Register specimens, aliquots and derivatives (and import them).
    Register,
    /// Check in, check out, return, move, thaw, consume, ship, receive.
    Handle,
    /// Print labels and box maps.
    Print,
    /// Dispose of a specimen (irreversible).
    Dispose,
    /// Block and unblock specimens and donors.
    Block,
    /// Add or move boxes, racks, freezers: the storage layout.
    StorageLayout,
    /// Settle a conflict between benches.
    ResolveConflict,
    /// Send tubes out of the network to a researcher (an MTA): Kura's custody ends.
    Distribute,
    /// Add users, grant roles, disable users, set another user's credentials.
    ManageUsers,
    /// Printers, the site's time zone, enrollment with the registry.
    Settings,
    /// Read specimens, storage, history; verify; export; audit reports.
    Read,
}

impl Act {
    pub const ALL: [Act; 11] = [
        Act::Register,
        Act::Handle,
        Act::Print,
        Act::Dispose,
        Act::Block,
        Act::StorageLayout,
        Act::ResolveConflict,
        Act::Distribute,
        Act::ManageUsers,
        Act::Settings,
        Act::Read,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Act::Register => "register",
            Act::Handle => "handle",
            Act::Print => "print",
            Act::Dispose => "dispose",
            Act::Block => "block",
            Act::StorageLayout => "storage_layout",
            Act::ResolveConflict => "resolve_conflict",
            Act::Distribute => "distribute",
            Act::ManageUsers => "manage_users",
            Act::Settings => "settings",
            Act::Read => "read",
        }
    }
}

/// The authorisation table: may `role` do `act`?
pub fn allowed(act: Act, role: Role) -> bool {
    use Act::*;
    match role {
        Role::Technician => matches!(act, Register | Handle | Print | Read),
        Role::Supervisor => matches!(
            act,
            Register
                | Handle
                | Print
                | Read
                | Dispose
                | Block
                | StorageLayout
                | ResolveConflict
                | Distribute
        ),
        Role::Administrator => matches!(act, ManageUsers | Settings | Read),
        Role::Auditor => matches!(act, Read),
    }
}

/// The least role that may do `act` (what a `forbidden` error names).
pub fn role_needed(act: Act) -> Role {
    [
        Role::Technician,
        Role::Supervisor,
        Role::Administrator,
        Role::Auditor,
    ]
    .into_iter()
    .find(|r| allowed(act, *r))
    .unwrap_or(Role::Administrator)
}

/// The act an event records. A user changing their own password or PIN needs no role.
pub fn act_of(body: &EventBody, actor: &str) -> Option<Act> {
    Some(match body {
        EventBody::Registered { .. } | EventBody::Derived { .. } | EventBody::Imported { .. } => {
            Act::Register
        }
        EventBody::CheckedIn { .. }
        | EventBody::CheckedOut { .. }
        | EventBody::Returned { .. }
        | EventBody::Moved { .. }
        | EventBody::Thawed { .. }
        | EventBody::Consumed { .. }
        | EventBody::Shipped { .. }
        | EventBody::Received { .. } => Act::Handle,
        EventBody::Disposed { .. } => Act::Dispose,
        EventBody::ShipmentDispatched { shipment } if shipment.destination.leaves_network() => {
            Act::Distribute
        }
        EventBody::ShipmentDispatched { .. } => Act::Handle,
        EventBody::Distributed { .. } => Act::Distribute,
        EventBody::ShipmentArrived { .. } => Act::Handle,
        EventBody::KeyTrusted { .. } => Act::ManageUsers,
        EventBody::Blocked { .. }
        | EventBody::Unblocked { .. }
        | EventBody::ConsentWithdrawn { .. } => Act::Block,
        EventBody::ContainerCreated { .. } | EventBody::ContainerMoved { .. } => Act::StorageLayout,
        EventBody::ConflictResolved { .. } | EventBody::ConflictSettled { .. } => {
            Act::ResolveConflict
        }
        EventBody::LabelsPrinted { .. } => Act::Print,
        EventBody::AuditExported { .. } => Act::Read,
        EventBody::CredentialSet { user, .. } if user == actor => return None,
        // A signature is its signer's own statement; the act it signs was checked on its own.
        EventBody::Signed { .. } => return None,
        EventBody::UserAdded { .. }
        | EventBody::RoleGranted { .. }
        | EventBody::UserDisabled { .. }
        | EventBody::CredentialSet { .. } => Act::ManageUsers,
    })
}

/// The acts that are signed on a database with users: the irreversible ones and those that
/// change who may do what or where things are.
pub fn is_signed(act: Act) -> bool {
    matches!(
        act,
        Act::Dispose
            | Act::StorageLayout
            | Act::ResolveConflict
            | Act::Distribute
            | Act::ManageUsers
    )
}

/// The act for which this event must carry its author's signature (None: it need not). A
/// consent withdrawal and an audit export are signed too.
pub fn signed_act_of(body: &EventBody, actor: &str) -> Option<Act> {
    match body {
        EventBody::ConsentWithdrawn { .. } => Some(Act::Block),
        EventBody::AuditExported { .. } => Some(Act::Read),
        _ => act_of(body, actor).filter(|a| is_signed(*a)),
    }
}

/// One user as the registry's projection holds them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub role: Role,
    pub disabled: bool,
    /// Their signing key, once a password credential published one.
    pub key: Option<crate::sign::PublicKey>,
}

/// An event to judge: who recorded it, when, its id and hash, and what it says.
#[derive(Debug, Clone, Copy)]
pub struct Judged<'a> {
    pub actor: &'a str,
    pub at: i64,
    pub id: uuid::Uuid,
    pub hash: crate::hash::Digest,
    pub body: &'a EventBody,
}

/// The users of one site at a point of its order, as the registry projects them from the
/// events it took: what it judges each new event by. A site with no user yet is open (as a
/// bench without users is); its first administrator is accepted once, and from then on every
/// event must come from an enabled user whose role allows it, and every signed act must carry
/// a valid signature by someone allowed to do it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authority {
    pub members: std::collections::BTreeMap<String, Member>,
}

impl Authority {
    pub fn secured(&self) -> bool {
        !self.members.is_empty()
    }

    /// Judges a workstation's new events, in order: `None` for an event taken (and applied to
    /// the projection), `Some(reason)` for one refused (`forbidden`; it changes nothing). A
    /// signed act's signature must follow it in the same batch (a bench never sends one without
    /// the other).
    pub fn judge(&mut self, events: &[Judged<'_>]) -> Vec<Option<String>> {
        let mut out = Vec::with_capacity(events.len());
        let mut refused = std::collections::HashSet::new();
        for (i, e) in events.iter().enumerate() {
            let verdict = match e.body {
                EventBody::Signed { event, .. } if refused.contains(event) => {
                    Some(format!("it signs event {event}, which this site refused"))
                }
                _ => self.one(e, &events[i + 1..]),
            };
            match verdict {
                None => self.apply(e),
                Some(_) => {
                    refused.insert(e.id);
                }
            }
            out.push(verdict);
        }
        out
    }

    fn one(&self, e: &Judged<'_>, after: &[Judged<'_>]) -> Option<String> {
        if !self.secured() {
            return None;
        }
        let member = match self.members.get(e.actor) {
            Some(m) if !m.disabled => m,
            Some(_) => return Some(format!("{} is disabled at this site", e.actor)),
            None if matches!(e.body, EventBody::UserAdded { .. }) => {
                return Some(format!(
                    "this site already has users: {} is not one of them, and a site's first administrator is accepted only once; an administrator adds users, signed",
                    e.actor
                ));
            }
            None => {
                return Some(format!(
                    "{} is not a user of this site: on a site with users, every act is recorded by a signed-in user",
                    e.actor
                ));
            }
        };
        if let Some(act) = act_of(e.body, e.actor)
            && !allowed(act, member.role)
        {
            return Some(format!(
                "{} ({}) may not {}: it needs the role {}",
                e.actor,
                member.role.as_str(),
                act.as_str(),
                role_needed(act).as_str()
            ));
        }
        if let EventBody::Signed { signer, .. } = e.body {
            if signer != e.actor {
                return Some(format!(
                    "a signature is its signer's own statement: {} recorded one in {signer}'s name",
                    e.actor
                ));
            }
            return self.signature_problem(e).map(|p| p.to_string());
        }
        if let Some(act) = signed_act_of(e.body, e.actor) {
            let signature = after.iter().find(|s| {
                matches!(s.body, EventBody::Signed { event, event_hash, .. }
                    if *event == e.id && event_hash.parse().ok() == Some(e.hash))
            });
            let Some(s) = signature else {
                return Some(format!(
                    "{} is a signed act, and no signature on it came with it",
                    act.as_str()
                ));
            };
            let EventBody::Signed { signer, .. } = s.body else {
                return None;
            };
            let allowed_signer = self
                .members
                .get(signer.as_str())
                .is_some_and(|m| !m.disabled && allowed(act, m.role));
            if !allowed_signer {
                return Some(format!(
                    "{} is signed by {signer}, who may not do it",
                    act.as_str()
                ));
            }
            // User administration stands on a key: an administrator's verified signature.
            let strict = act == Act::ManageUsers;
            if let Some(p) = self.check_signature(s, strict) {
                return Some(format!("its signature does not hold: {p}"));
            }
        }
        None
    }

    fn signature_problem(&self, e: &Judged<'_>) -> Option<crate::sign::SignatureError> {
        self.check_signature(e, false)
    }

    fn check_signature(&self, e: &Judged<'_>, strict: bool) -> Option<crate::sign::SignatureError> {
        let mut book = crate::sign::KeyBook::default();
        if let EventBody::Signed { signer, .. } = e.body
            && let Some(k) = self
                .members
                .get(signer.as_str())
                .and_then(|m| m.key.clone())
        {
            book.apply(&EventBody::CredentialSet {
                user: signer.clone(),
                secret: crate::user::Secret::Password,
                hash: String::new(),
                key: Some(k),
            });
        }
        book.check(e.body, e.at, strict).err()
    }

    /// Takes an event the site accepted into the projection.
    pub fn apply(&mut self, e: &Judged<'_>) {
        match e.body {
            EventBody::UserAdded { user, role, .. } => {
                self.members.insert(
                    user.clone(),
                    Member {
                        role: *role,
                        disabled: false,
                        key: None,
                    },
                );
            }
            EventBody::RoleGranted { user, role } => {
                if let Some(m) = self.members.get_mut(user) {
                    m.role = *role;
                }
            }
            EventBody::UserDisabled { user, .. } => {
                if let Some(m) = self.members.get_mut(user) {
                    m.disabled = true;
                }
            }
            EventBody::CredentialSet {
                user,
                secret: crate::user::Secret::Password,
                key,
                ..
            } => {
                if let Some(m) = self.members.get_mut(user) {
                    m.key = key.clone();
                }
            }
            _ => {}
        }
    }
}
