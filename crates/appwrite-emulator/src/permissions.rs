//! Appwrite permissions: strings like `read("team:paid")`, checked against a caller's roles.
//! Collections and buckets carry permissions; with document (file) security on, each document
//! (file) carries its own too, and either grants access.

use crate::{
    auth::Caller,
    error::{ApiError, ApiResult},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Read,
    Create,
    Update,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Read => "read",
            Action::Create => "create",
            Action::Update => "update",
            Action::Delete => "delete",
        }
    }
}

/// Validates and normalizes a permission list as Appwrite does: `write` expands to
/// create, update and delete; duplicates are dropped; order is kept.
pub fn normalize(perms: &[String]) -> ApiResult<Vec<String>> {
    let mut out: Vec<String> = Vec::new();
    let mut push = |p: String| {
        if !out.contains(&p) {
            out.push(p);
        }
    };
    for raw in perms {
        let (action, role) = split(raw)?;
        validate_role(role, raw)?;
        if action == "write" {
            for a in ["create", "update", "delete"] {
                push(format!("{a}(\"{role}\")"));
            }
        } else {
            push(format!("{action}(\"{role}\")"));
        }
    }
    Ok(out)
}

/// Splits `read("team:paid")` into `("read", "team:paid")`.
fn split(raw: &str) -> ApiResult<(&str, &str)> {
    let invalid = || {
        ApiError::argument_invalid(format!(
            "Invalid `permissions` param: Permission \"{raw}\" is not allowed. Must be one of: create, read, update, delete, write."
        ))
    };
    let open = raw.find('(').ok_or_else(invalid)?;
    let action = &raw[..open];
    if !matches!(action, "read" | "create" | "update" | "delete" | "write") {
        return Err(invalid());
    }
    let inner = raw[open + 1..].strip_suffix(')').ok_or_else(invalid)?;
    let role = inner
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .ok_or_else(invalid)?;
    Ok((action, role))
}

fn validate_role(role: &str, raw: &str) -> ApiResult<()> {
    let (kind, rest) = role.split_once(':').unwrap_or((role, ""));
    let (kind, _dimension) = kind
        .split_once('/')
        .map_or((kind, None), |(k, d)| (k, Some(d)));
    let ok = match kind {
        "any" | "guests" => rest.is_empty(),
        "users" => rest.is_empty(),
        "user" | "team" | "member" | "label" => !rest.is_empty(),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ApiError::argument_invalid(format!(
            "Invalid `permissions` param: Role \"{role}\" in \"{raw}\" is not allowed. Must be one of: any, guests, users, user, team, member, label."
        )))
    }
}

/// The roles a permission list grants `action` to.
pub fn roles_for(perms: &[String], action: Action) -> Vec<String> {
    perms
        .iter()
        .filter_map(|p| split(p).ok())
        .filter(|(a, _)| *a == action.as_str())
        .map(|(_, r)| r.to_owned())
        .collect()
}

/// Does `roles` hold any role that `perms` grants `action` to?
pub fn grants(perms: &[String], action: Action, roles: &[String]) -> bool {
    perms
        .iter()
        .filter_map(|p| split(p).ok())
        .any(|(a, r)| a == action.as_str() && roles.iter().any(|role| role == r))
}

/// Appwrite's rule: the container (collection, bucket) grants access, or, with item-level
/// security on, the item (document, file) does. The server key may do everything.
pub fn allowed(
    caller: &Caller,
    action: Action,
    container: &[String],
    item_security: bool,
    item: &[String],
) -> bool {
    if caller.is_key() {
        return true;
    }
    let roles = caller.roles();
    grants(container, action, &roles) || (item_security && grants(item, action, &roles))
}

/// A session user may only hand out permissions for roles they hold themselves.
pub fn check_grantable(caller: &Caller, perms: &[String]) -> ApiResult<()> {
    if caller.is_key() {
        return Ok(());
    }
    let roles = caller.roles();
    for p in perms {
        let (_, role) = split(p)?;
        if role != "any" && !roles.iter().any(|r| r == role) {
            return Err(ApiError::new(
                401,
                "user_unauthorized",
                format!(
                    "Permissions must be one of: ({}). Permission \"{p}\" is not allowed.",
                    roles.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn write_expands_and_duplicates_drop() {
        let got = normalize(&s(&[
            "write(\"user:a\")",
            "update(\"user:a\")",
            "read(\"any\")",
        ]))
        .unwrap();
        assert_eq!(
            got,
            s(&[
                "create(\"user:a\")",
                "update(\"user:a\")",
                "delete(\"user:a\")",
                "read(\"any\")"
            ])
        );
    }

    #[test]
    fn malformed_permissions_are_rejected() {
        for bad in [
            "read(team:paid)",
            "fly(\"any\")",
            "read(\"nobody\")",
            "read(\"team:\")",
            "read",
        ] {
            assert!(normalize(&s(&[bad])).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn container_or_item_grants() {
        let paid = Caller::User(crate::auth::UserCtx {
            user_id: "u".into(),
            session_id: "s".into(),
            roles: s(&["any", "users", "user:u", "team:paid"]),
        });
        let container = s(&["read(\"team:paid\")"]);
        assert!(allowed(&paid, Action::Read, &container, false, &[]));
        assert!(!allowed(&paid, Action::Update, &container, false, &[]));
        assert!(!allowed(
            &paid,
            Action::Update,
            &container,
            false,
            &s(&["update(\"user:u\")"])
        ));
        assert!(allowed(
            &paid,
            Action::Update,
            &container,
            true,
            &s(&["update(\"user:u\")"])
        ));
        assert!(!allowed(
            &Caller::Guest,
            Action::Read,
            &container,
            true,
            &[]
        ));
        assert!(allowed(&Caller::Key, Action::Delete, &[], false, &[]));
    }
}
