//! Sell.app webhook bodies (`g3_core::sellapp::Event::parse`) from arbitrary bytes.
//!
//! Checks: no panic; parsing is deterministic; the event name round-trips through
//! `EventKind`; ids are non-empty and trimmed (as `id_of` promises); a buyer email is in its
//! normal form (parsing it again gives the same address); the delivery id is a valid
//! Appwrite custom id (32 lower-case hex chars).
#![no_main]

use g3_core::{
    email::Email,
    sellapp::{Event, EventKind},
};
use libfuzzer_sys::fuzz_target;

// Issue found for issue #12, fixed in crates/core/src/email.rs (2026-12-05); the name stays
// for `G3_FUZZ_KNOWN` (see known.rs):
// - `email-normal-form`: `Email::parse` checks the address before lower-casing it, and some
//   characters grow when lower-cased (`İ` becomes `i` + U+0307), so the stored form can fail
//   the checks when parsed again: `a@İ.com`, or a 64-byte local part of `İ`s.
mod known;
use known::known;

fn check_id(what: &str, id: Option<&str>) {
    if let Some(id) = id {
        assert!(!id.is_empty() && id.trim() == id, "{what} {id:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(event) = Event::parse(data) else {
        return;
    };
    assert_eq!(Event::parse(data).ok().as_ref(), Some(&event), "not deterministic");
    assert_eq!(EventKind::parse(event.kind.as_str()), event.kind);
    let _ = event.kind.effect();
    check_id("store_id", event.store_id.as_deref());
    check_id("object_id", event.object_id.as_deref());
    check_id("subscription_id", event.subscription_id.as_deref());
    for item in &event.items {
        check_id("product_id", Some(&item.product_id));
        check_id("variant_id", item.variant_id.as_deref());
        check_id("item subscription_id", item.subscription_id.as_deref());
    }
    if let Some(email) = event.email.as_ref().filter(|_| !known("email-normal-form")) {
        assert_eq!(
            Email::parse(email.as_str()).ok().as_ref(),
            Some(email),
            "a parsed email is not in normal form: {:?}",
            email.as_str()
        );
    }
    let id = event.delivery_id();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "delivery id {id}"
    );
});
