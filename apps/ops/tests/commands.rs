//! The admin commands against a bootstrapped emulator: what an admin sees and what changes.

use g3_access::{Access, Cause, NewFailure};
use g3_core::{
    Email,
    plans::{Plan, PlanCatalog},
};
use g3_store::{Collection, models::AuditEntry};
use ops::commands;

fn admin() -> Cause {
    Cause::Admin {
        actor: "ops:alice".into(),
        reason: "ticket 42".into(),
    }
}

#[tokio::test]
async fn grant_lookup_revoke_with_audit() {
    let backend = testkit::backend::backend().await;
    let access = Access::new(backend.client.clone(), PlanCatalog::default());
    let email = Email::parse("Support@Case.io").unwrap();
    let until = g3_core::until::parse_until("2999-12-31", time::OffsetDateTime::now_utc()).unwrap();

    let out = commands::grant(
        &access,
        &email,
        &Plan::parse("vip").unwrap(),
        Some(until),
        &admin(),
    )
    .await
    .unwrap();
    assert!(
        out.starts_with("granted: support@case.io vip until 2999-12-31T23:59:59.000+00:00"),
        "{out}"
    );

    let page = commands::lookup(&access, &email).await.unwrap();
    assert!(page.contains("customer support@case.io"), "{page}");
    assert!(page.contains("email NOT verified"), "{page}");
    assert!(page.contains("team paid    member"), "{page}");
    assert!(page.contains("vip        Active (grants access)"), "{page}");
    assert!(
        page.contains("ticket 42"),
        "the history names the admin's reason: {page}"
    );

    let out = commands::revoke(&access, &email, None, &admin())
        .await
        .unwrap();
    assert!(out.contains("revoked: support@case.io vip"), "{out}");
    let page = commands::lookup(&access, &email).await.unwrap();
    assert!(page.contains("team paid    -"), "{page}");
    assert!(page.contains("Revoked"), "{page}");
    let audit_lines: Vec<&str> = page
        .lines()
        .skip_while(|l| !l.starts_with("  audit (latest"))
        .collect();
    for action in ["grant ", "revoke "] {
        assert!(
            audit_lines
                .iter()
                .any(|l| l.contains(action) && l.contains("ops:alice")),
            "the audit trail shows the {action}by the admin: {page}"
        );
    }

    let audit = Collection::<AuditEntry>::new(&backend.client)
        .list(&[g3_appwrite::Query::equal("target", "support@case.io")])
        .await
        .unwrap();
    let actions: Vec<_> = audit
        .documents
        .iter()
        .map(|d| (d.data.actor.as_str(), d.data.action.as_str()))
        .collect();
    assert!(
        actions.contains(&("ops:alice", "grant")) && actions.contains(&("ops:alice", "revoke")),
        "{actions:?}"
    );
}

#[tokio::test]
async fn lookup_of_a_stranger_says_so() {
    let backend = testkit::backend::backend().await;
    let access = Access::new(backend.client.clone(), PlanCatalog::default());
    let page = commands::lookup(&access, &Email::parse("nobody@x.io").unwrap())
        .await
        .unwrap();
    assert!(page.contains("account      none"), "{page}");
    assert!(page.contains("subscriptions (0)"), "{page}");
}

#[tokio::test]
async fn failures_list_show_and_retry_after_the_configuration_is_fixed() {
    let backend = testkit::backend::backend().await;
    let payload = br#"{"event":"order.completed","store":1,"data":{"id":5,"customer":{"email":"late@config.io"},"line_items":[{"product_id":42}]}}"#;
    // Recorded while product 42 had no plan configured.
    let before = Access::new(backend.client.clone(), PlanCatalog::default());
    let id = before
        .record_failure(NewFailure {
            delivery_id: "d-42",
            event: Some("order.completed"),
            email: Some("late@config.io"),
            payload,
            headers: r#"{"signature":"abc"}"#,
            error: "no plan is configured for product 42",
            retryable: false,
            retry_now: false,
        })
        .await
        .unwrap();
    let list = commands::failures_list(&before, false).await.unwrap();
    assert!(
        list.contains(&id) && list.contains("dead") && list.contains("late@config.io"),
        "{list}"
    );
    let shown = commands::failures_show(&before, &id).await.unwrap();
    assert!(
        shown.contains("\"product_id\":42") && shown.contains("signature"),
        "{shown}"
    );

    // The operator maps product 42 and retries.
    let fixed = Access::new(
        backend.client.clone(),
        PlanCatalog::parse("42=pro").unwrap(),
    );
    let mut lines = Vec::new();
    let out = commands::failures_retry(&fixed, None, &mut |l| lines.push(l.to_owned()))
        .await
        .unwrap();
    assert_eq!(out, "1 resolved, 0 still failing");
    assert!(lines[0].contains("resolved"), "{lines:?}");
    assert_eq!(
        commands::failures_list(&fixed, false).await.unwrap(),
        "no open failures"
    );
    let page = commands::lookup(&fixed, &Email::parse("late@config.io").unwrap())
        .await
        .unwrap();
    assert!(page.contains("pro        Active"), "{page}");
}

#[tokio::test]
async fn routes_add_list_remove() {
    use g3_store::models::Route;
    let backend = testkit::backend::backend().await;
    let c = &backend.client;
    assert!(
        commands::routes_list(c)
            .await
            .unwrap()
            .starts_with("no routes")
    );
    let route = Route {
        source_channel_id: "1100000000000000001".into(),
        source_guild_id: None,
        name: "VIP calls".into(),
        customer_channel_ids: vec!["1300000000000000001".into()],
        enabled: Some(true),
    };
    let out = commands::routes_add(c, "vip", &route).await.unwrap();
    assert!(out.contains("route vip (VIP calls)"), "{out}");
    let list = commands::routes_list(c).await.unwrap();
    assert!(
        list.contains("vip")
            && list.contains("1100000000000000001")
            && list.contains("1300000000000000001"),
        "{list}"
    );

    let bad = Route {
        source_channel_id: "general".into(),
        ..route.clone()
    };
    let err = commands::routes_add(c, "x", &bad)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a Discord channel id"), "{err}");
    let taken = commands::routes_add(c, "other", &route)
        .await
        .unwrap_err()
        .to_string();
    assert!(taken.contains("already feeds another route"), "{taken}");

    assert!(
        commands::routes_remove(c, "vip")
            .await
            .unwrap()
            .contains("removed")
    );
    assert_eq!(
        commands::routes_remove(c, "vip").await.unwrap(),
        "no route vip"
    );
}

#[tokio::test]
async fn lookup_shows_discord_and_roles_and_link_and_resync_commands_work() {
    use g3_core::plans::PlanRoles;
    let backend = testkit::backend::backend().await;
    let access = Access::new(backend.client.clone(), PlanCatalog::default())
        .with_roles(PlanRoles::parse("vip=5551").unwrap());
    let email = Email::parse("linked@case.io").unwrap();
    commands::grant(
        &access,
        &email,
        &Plan::parse("vip").unwrap(),
        None,
        &admin(),
    )
    .await
    .unwrap();
    let user = backend
        .client
        .users()
        .find_by_email(email.as_str())
        .await
        .unwrap()
        .unwrap()
        .id;

    let page = commands::lookup(&access, &email).await.unwrap();
    assert!(page.contains("discord      not linked"), "{page}");
    assert!(
        page.contains("should hold []: email not verified"),
        "{page}"
    );

    backend
        .client
        .users()
        .update_email_verification(&user, true)
        .await
        .unwrap();
    access
        .link_discord(&user, "31337", Some("whale"), "customer:linked@case.io")
        .await
        .unwrap();
    let page = commands::lookup(&access, &email).await.unwrap();
    assert!(
        page.contains("discord      31337 (whale), linked "),
        "{page}"
    );
    assert!(
        page.contains("should hold [5551]: active plans: vip"),
        "{page}"
    );
    assert!(page.contains("role 5551"), "{page}");
    assert!(page.contains("desired true"), "{page}");

    let shown = commands::link_show(&access, Some(&email), None)
        .await
        .unwrap();
    assert!(shown.contains("linked to Discord 31337 (whale)"), "{shown}");
    let shown = commands::link_show(&access, None, Some("31337"))
        .await
        .unwrap();
    assert!(shown.starts_with("linked@case.io"), "{shown}");
    let shown = commands::link_show(&access, None, Some("1")).await.unwrap();
    assert_eq!(shown, "Discord account 1 is not linked to anyone");

    let mut lines = Vec::new();
    let out = commands::roles_resync(&access, None, "ops:alice", &mut |l| {
        lines.push(l.to_owned())
    })
    .await
    .unwrap();
    assert_eq!(lines, vec![format!("[1/1] {user}: should hold [5551]")]);
    assert!(out.starts_with("1 customer(s) queued"), "{out}");
    let state = access.role_states(&user).await.unwrap();
    assert_eq!(state.len(), 1);
    assert_eq!(state[0].data.applied, None, "marked unchecked for the bot");

    let out = commands::link_remove(&access, &email, "ops:alice", "sold account")
        .await
        .unwrap();
    assert!(
        out.starts_with("unlinked linked@case.io from Discord 31337"),
        "{out}"
    );
    let page = commands::lookup(&access, &email).await.unwrap();
    assert!(
        page.contains("should hold []: Discord not linked"),
        "{page}"
    );
    let out = commands::link_remove(&access, &email, "ops:alice", "again")
        .await
        .unwrap();
    assert!(out.ends_with("nothing to do"), "{out}");

    let actions: Vec<String> = Collection::<AuditEntry>::new(&backend.client)
        .list(&[g3_appwrite::Query::equal(
            "action",
            vec!["discord.link", "discord.unlink", "roles.resync"],
        )])
        .await
        .unwrap()
        .documents
        .into_iter()
        .map(|d| format!("{} {}", d.data.actor, d.data.action))
        .collect();
    assert_eq!(actions.len(), 3, "{actions:?}");
    assert!(actions.contains(&"ops:alice roles.resync".to_owned()));
    assert!(actions.contains(&"ops:alice discord.unlink".to_owned()));
}

#[tokio::test]
async fn roles_resync_without_plan_roles_says_why() {
    let backend = testkit::backend::backend().await;
    let access = Access::new(backend.client.clone(), PlanCatalog::default());
    let err = commands::roles_resync(&access, None, "ops:alice", &mut |_| {})
        .await
        .unwrap_err();
    assert!(err.to_string().contains("PLAN_ROLES is empty"), "{err}");
}

#[tokio::test]
async fn service_users_and_staff_are_made_and_removed_with_audit() {
    let backend = testkit::backend::backend().await;
    let access = Access::new(backend.client.clone(), PlanCatalog::default());
    let svc = Email::parse("web@service.internal").unwrap();

    let short = commands::service_user_create(&access, &svc, "short", &admin()).await;
    assert!(short.is_err(), "a short password is refused");

    let out = commands::service_user_create(&access, &svc, "a-long-service-password", &admin())
        .await
        .unwrap();
    assert!(
        out.contains("created, email verified, member of teams staff and paid (role service)"),
        "{out}"
    );
    // The service can sign in with it, as web and the bot do for Realtime.
    let session = backend
        .client
        .account()
        .create_email_password_session(svc.as_str(), "a-long-service-password")
        .await;
    assert!(session.is_ok(), "{session:?}");
    // Again with a new password: the password is set again (rotation), nothing duplicated.
    let out = commands::service_user_create(&access, &svc, "another-long-password", &admin())
        .await
        .unwrap();
    assert!(out.contains("password set"), "{out}");
    let list = commands::staff_list(&backend.client).await.unwrap();
    assert!(
        list.contains("web@service.internal") && list.contains("service"),
        "{list}"
    );
    assert!(list.ends_with("1 staff member(s)"), "{list}");
    // In `paid` too, with role `service`: web hears that team's membership changes.
    let user = backend
        .client
        .users()
        .find_by_email(svc.as_str())
        .await
        .unwrap()
        .unwrap();
    let teams = backend
        .client
        .users()
        .list_memberships(&user.id)
        .await
        .unwrap();
    for team in ["staff", "paid"] {
        assert!(
            teams
                .memberships
                .iter()
                .any(|m| m.team_id == team && m.roles == ["service"]),
            "{team}: {teams:?}"
        );
    }

    // Staff: only existing accounts; adding twice changes nothing; removing works.
    let alice = Email::parse("alice@example.com").unwrap();
    let err = commands::staff_add(&access, &alice, &admin())
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("sign up on the dashboard first"),
        "{err}"
    );
    backend
        .client
        .users()
        .create("alice", alice.as_str(), Some("alice-password-1"), None)
        .await
        .unwrap();
    let out = commands::staff_add(&access, &alice, &admin())
        .await
        .unwrap();
    assert!(out.contains("is now staff"), "{out}");
    let out = commands::staff_add(&access, &alice, &admin())
        .await
        .unwrap();
    assert!(out.contains("already staff"), "{out}");
    let out = commands::staff_remove(&access, &alice, &admin())
        .await
        .unwrap();
    assert!(out.contains("no longer staff"), "{out}");
    let out = commands::staff_remove(&access, &alice, &admin())
        .await
        .unwrap();
    assert!(out.contains("not staff"), "{out}");

    let audit = Collection::<AuditEntry>::new(&backend.client)
        .list(&[g3_appwrite::Query::equal("target", "alice@example.com")])
        .await
        .unwrap();
    let actions: Vec<&str> = audit
        .documents
        .iter()
        .map(|d| d.data.action.as_str())
        .collect();
    assert!(
        actions.contains(&"staff.added") && actions.contains(&"staff.removed"),
        "{actions:?}"
    );
}
