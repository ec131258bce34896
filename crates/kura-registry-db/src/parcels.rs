//! Parcels: what travels between sites through the registry beside the events. A shipment's
//! bundle goes from the sending workstation to the destination site; a receipt (the receiving
//! bench's `received` event, as the registry took it) goes back to the sending site. What every
//! backend must decide the same way is here; the backends read and write around it.

use kura_domain::bundle::{Bundle, FollowUp};
use kura_domain::shipment::Destination;
use kura_domain::{Digest, EventBody};
use kura_proto::{Envelope, Parcel};

use crate::{Caller, DbError, DbResult};

/// A bundle the registry may keep: for whom, and under which hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Addressed {
    pub to_site: String,
    pub shipment: String,
    pub hash: Digest,
    /// The dispatch's place in the caller's stream.
    pub seq: u64,
    pub key: String,
}

/// Checks what needs no database: the bundle checks itself (hashes, names, signature), its
/// dispatch is the caller's own event, and it goes to another site of the network.
pub fn check_bundle(caller: &Caller, bundle: &Bundle) -> DbResult<Addressed> {
    let shipment = bundle.check().map_err(|p| DbError::Parcel {
        code: p.code(),
        message: format!("the bundle of shipment {} is refused: {p}", bundle.shipment),
    })?;
    let dispatch = &bundle.dispatch.event;
    if dispatch.workstation != caller.workstation {
        return Err(DbError::NotYourStream {
            seq: dispatch.seq,
            claimed: dispatch.workstation,
        });
    }
    let Destination::Site { code } = &shipment.destination else {
        return Err(DbError::Parcel {
            code: "not_to_a_site",
            message: format!(
                "shipment {} goes to a recipient outside the network; only a shipment to a site travels through the registry",
                shipment.id
            ),
        });
    };
    if *code == caller.site.code {
        return Err(DbError::Parcel {
            code: "same_site",
            message: format!(
                "shipment {} goes to this workstation's own site {code}; a shipment travels to another site",
                shipment.id
            ),
        });
    }
    Ok(Addressed {
        to_site: code.clone(),
        shipment: shipment.id,
        hash: dispatch.hash,
        seq: dispatch.seq,
        key: bundle.key.clone(),
    })
}

/// The registry must hold the dispatch as the caller's event, with the bundle's hash (`held`:
/// the hash it holds at that seq of the caller's stream).
pub fn dispatch_held(a: &Addressed, held: Option<Digest>) -> DbResult<()> {
    match held {
        Some(h) if h == a.hash => Ok(()),
        Some(_) => Err(DbError::Parcel {
            code: "bundle_mismatch",
            message: format!(
                "the registry holds another event as seq {} of this workstation than the dispatch of shipment {}; the bundle is not this workstation's record",
                a.seq, a.shipment
            ),
        }),
        None => Err(DbError::Parcel {
            code: "not_acknowledged",
            message: format!(
                "the registry does not hold the dispatch of shipment {} (seq {} of this workstation) yet; push the events first, then send the bundle again",
                a.shipment, a.seq
            ),
        }),
    }
}

/// A workstation signs every bundle with one key: the first bundle binds it (`Ok(true)`), a later
/// one with another key is refused.
pub fn key_bound(bound: Option<&str>, key: &str) -> DbResult<bool> {
    match bound {
        None => Ok(true),
        Some(k) if k == key => Ok(false),
        Some(_) => Err(DbError::Parcel {
            code: "key_changed",
            message: "this workstation signed an earlier bundle with another key; a bundle signed with a new one is not taken. Ask the registry administrator".into(),
        }),
    }
}

/// A follow-up the registry may keep: the caller's block of `specimen`, for the destination of
/// the caller's site's shipment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowedUp {
    pub shipment: String,
    pub specimen: kura_domain::SpecimenCode,
    pub hash: Digest,
    pub seq: u64,
    pub key: String,
}

/// Checks what needs no database: the follow-up checks itself (a block, hashed as it carries,
/// signed) and the block is the caller's own event.
pub fn check_follow_up(caller: &Caller, f: &FollowUp) -> DbResult<FollowedUp> {
    let (specimen, _) = f.check().map_err(|p| DbError::Parcel {
        code: p.code(),
        message: format!("the follow-up of shipment {} is refused: {p}", f.shipment),
    })?;
    let e = &f.event.event;
    if e.workstation != caller.workstation {
        return Err(DbError::NotYourStream {
            seq: e.seq,
            claimed: e.workstation,
        });
    }
    Ok(FollowedUp {
        shipment: f.shipment.clone(),
        specimen,
        hash: e.hash,
        seq: e.seq,
        key: f.key.clone(),
    })
}

/// The registry must hold the block as the caller's event, with the follow-up's hash.
pub fn block_held(f: &FollowedUp, held: Option<Digest>) -> DbResult<()> {
    match held {
        Some(h) if h == f.hash => Ok(()),
        Some(_) => Err(DbError::Parcel {
            code: "bundle_mismatch",
            message: format!(
                "the registry holds another event as seq {} of this workstation than the follow-up's block of {}",
                f.seq, f.specimen
            ),
        }),
        None => Err(DbError::Parcel {
            code: "not_acknowledged",
            message: format!(
                "the registry does not hold the block of {} (seq {} of this workstation) yet; push the events first, then send the follow-up again",
                f.specimen, f.seq
            ),
        }),
    }
}

/// Where a follow-up goes: the destination of the caller's site's shipment (its bundle as the
/// registry keeps it, sent from `from_site`), which must carry the tube.
pub fn follow_up_to(f: &FollowedUp, bundle: Option<(String, Bundle)>) -> DbResult<String> {
    let Some((to_site, bundle)) = bundle else {
        return Err(DbError::Parcel {
            code: "unknown_shipment",
            message: format!(
                "this registry holds no shipment {} from this site; a follow-up goes to a shipment sent through it",
                f.shipment
            ),
        });
    };
    let carried = match serde_json::from_str::<EventBody>(&bundle.dispatch.event.payload) {
        Ok(EventBody::ShipmentDispatched { shipment }) => shipment.specimens.contains(&f.specimen),
        _ => false,
    };
    if !carried {
        return Err(DbError::Parcel {
            code: "not_in_shipment",
            message: format!("shipment {} did not carry {}", f.shipment, f.specimen),
        });
    }
    Ok(to_site)
}

/// The shipment a `received` event names, if it is one.
pub fn received_shipment(kind: &str, payload: &str) -> Option<String> {
    if kind != "received" {
        return None;
    }
    match serde_json::from_str::<EventBody>(payload) {
        Ok(EventBody::Received { shipment, .. }) => Some(shipment),
        _ => None,
    }
}

/// The receipt of a receiving site's `received` event.
pub fn receipt(shipment: &str, site: &str, event: &Envelope) -> Parcel {
    Parcel::Receipt {
        shipment: shipment.to_string(),
        site: site.to_string(),
        event: event.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_binds_once() {
        let cases = [
            (None, "aa", Ok(true)),
            (Some("aa"), "aa", Ok(false)),
            (Some("aa"), "bb", Err("key_changed")),
        ];
        for (bound, key, want) in cases {
            assert_eq!(
                key_bound(bound, key).map_err(|e| e.code()),
                want,
                "{bound:?} {key}"
            );
        }
    }
}
