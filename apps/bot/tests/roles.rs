//! Role sync against the Appwrite emulator and the fake Discord (serenity's rate limiter on):
//! grants and revocations from deliveries, cancellation to the end of the period, drift repair,
//! rejoins, relinks and unlinks, a misconfigured bot role, and Discord failures. Paid periods
//! end on role sync's clock, which the tests move forward instead of waiting for it.

mod support;

use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use bot::{
    RetryPolicy, Secret, Settings,
    roles::{self, MemberJoined, Timing},
};
use g3_access::{Access, Clock, role_state_id};
use g3_appwrite::{Document, Query};
use g3_core::{
    Email,
    plans::{PlanCatalog, PlanRoles},
    sellapp::Event,
};
use g3_store::{
    Collection,
    models::{AuditEntry, RoleState},
};
use serde_json::json;
use serenity::{all::GuildId, http::HttpBuilder};
use support::{Logs, STAFF_EMAIL, STAFF_PASSWORD, eventually};
use testkit::{
    backend::Backend,
    discord::{BOT_USER_ID, FakeDiscord, FakeRole, Fault, permissions},
};
use time::OffsetDateTime;
use tokio::sync::mpsc;

const GUILD: u64 = 920_000_000_000_000_001;
/// The bot's own role, with Manage Roles.
const BOT_ROLE: u64 = 920_000_000_000_000_010;
/// The managed (paid) role.
const VIP: u64 = 920_000_000_000_000_020;
/// A role the bot does not manage.
const OTHER: u64 = 920_000_000_000_000_030;

fn plan_roles() -> PlanRoles {
    PlanRoles::parse(&format!("vip={VIP}")).unwrap()
}

struct World {
    backend: Backend,
    fake: FakeDiscord,
    access: Access,
}

/// The backend with a staff service user, and a guild where the bot's role (at
/// `bot_position`) has Manage Roles, VIP sits at 3 and an unmanaged role at 1.
async fn world(bot_position: u16) -> World {
    let backend = support::backend().await;
    let fake = FakeDiscord::spawn().await;
    fake.add_guild_role(
        GUILD,
        FakeRole::new(BOT_ROLE, "g3-bot", bot_position, permissions::MANAGE_ROLES),
    );
    fake.add_guild_role(GUILD, FakeRole::new(VIP, "VIP", 3, 0));
    fake.add_guild_role(GUILD, FakeRole::new(OTHER, "Member", 1, 0));
    fake.add_member(GUILD, BOT_USER_ID);
    assert!(fake.set_member_roles(GUILD, BOT_USER_ID, vec![BOT_ROLE]));
    let access = Access::new(
        backend.client.clone(),
        PlanCatalog::parse("3301=vip").unwrap(),
    )
    .with_roles(plan_roles());
    World {
        backend,
        fake,
        access,
    }
}

fn timing(reconcile_every: Duration) -> Timing {
    Timing {
        reconcile_every,
        recheck_every: Duration::from_millis(300),
        retry_base: Duration::from_millis(300),
        retry_max: Duration::from_secs(2),
    }
}

/// Role sync running on its own; `joins` is the gateway's side of member joins.
struct RoleSync {
    joins: mpsc::Sender<MemberJoined>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RoleSync {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn start_roles(w: &World, timing: Timing) -> RoleSync {
    start_roles_on(w, timing, Clock::default())
}

/// Role sync reading time from `clock` (paid periods, retries, stamps).
fn start_roles_on(w: &World, timing: Timing, clock: Clock) -> RoleSync {
    let config = roles::Config {
        guild_id: GuildId::new(GUILD),
        plan_roles: plan_roles(),
        timing,
        staff_email: STAFF_EMAIL.into(),
        staff_password: Secret::new(STAFF_PASSWORD),
        resubscribe: RetryPolicy {
            attempts: 5,
            base: Duration::from_millis(50),
            max: Duration::from_millis(200),
        },
        clock,
    };
    let http = HttpBuilder::new("test-token")
        .client(w.fake.client(Duration::from_millis(500)))
        .build();
    let (joins, rx) = mpsc::channel(16);
    let task = tokio::spawn(roles::run(
        config,
        Arc::new(http),
        w.backend.client.clone(),
        rx,
    ));
    RoleSync { joins, task }
}

/// The whole bot (`bot::run`) with role sync configured through its settings; it stops when
/// the returned handle is dropped.
fn start_bot(w: &World, timing: Timing) -> support::Running {
    support::start(Settings {
        guild_id: Some(GUILD),
        plan_roles: plan_roles(),
        role_timing: timing,
        ..support::settings(&w.backend, &w.fake)
    })
}

/// A verified customer linked to `discord` (who is in the guild when `in_guild`).
async fn customer(w: &World, email: &str, discord: u64, in_guild: bool) -> String {
    let user = w
        .access
        .find_or_create_user(&Email::parse(email).unwrap())
        .await
        .unwrap();
    w.backend
        .client
        .users()
        .update_email_verification(&user, true)
        .await
        .unwrap();
    w.access
        .link_discord(&user, &discord.to_string(), Some("someone"), "test")
        .await
        .unwrap();
    if in_guild {
        w.fake.add_member(GUILD, discord);
    }
    user
}

fn event(body: serde_json::Value) -> Event {
    Event::parse(body.to_string().as_bytes()).unwrap()
}

fn order(kind: &str, order_id: u64, email: &str) -> Event {
    event(json!({
        "event": kind, "store": 4821,
        "data": { "id": order_id, "status": "COMPLETED", "customer": { "email": email },
                  "line_items": [{ "id": 1, "product_id": 3301 }] }
    }))
}

fn subscription(kind: &str, sub_id: u64, email: &str, period_end: OffsetDateTime) -> Event {
    event(json!({
        "event": kind, "store": 4821,
        "data": { "id": sub_id, "customer": { "email": email }, "product_id": 3301,
                  "current_period_end": g3_appwrite::format_datetime(period_end) }
    }))
}

async fn deliver(w: &World, delivery: &str, e: &Event) {
    w.access.handle_delivery(delivery, e).await.unwrap();
}

fn has_vip(fake: &FakeDiscord, discord: u64) -> bool {
    fake.member_roles(GUILD, discord)
        .is_some_and(|r| r.contains(&VIP))
}

async fn role_state(w: &World, user: &str) -> RoleState {
    Collection::<RoleState>::new(&w.backend.client)
        .get(&role_state_id(user, &VIP.to_string()))
        .await
        .unwrap()
        .data
}

async fn drift_repairs(w: &World) -> Vec<Document<AuditEntry>> {
    Collection::<AuditEntry>::new(&w.backend.client)
        .list_all(&[Query::equal("action", roles::DRIFT_REPAIRED)], 100)
        .await
        .unwrap()
}

/// Role requests sent for one Discord user.
fn role_requests_for(fake: &FakeDiscord, discord: u64) -> Vec<testkit::discord::RecordedRequest> {
    let part = format!("/members/{discord}/roles/");
    fake.role_requests()
        .into_iter()
        .filter(|r| r.path.contains(&part))
        .collect()
}

/// Waits until role sync has listed the guild (its first reconciliation pass got that far).
async fn listed(fake: &FakeDiscord) {
    let f = fake.clone();
    eventually("the guild was listed", Duration::from_secs(10), || {
        let f = f.clone();
        async move {
            f.requests()
                .iter()
                .any(|r| r.method == "GET" && r.path == format!("/api/v10/guilds/{GUILD}/members"))
        }
    })
    .await;
}

#[tokio::test]
async fn a_paid_verified_linked_customer_gets_the_role_back_on_rejoining_and_loses_it_on_a_dispute()
{
    let w = world(5).await;
    let alice = 930_000_000_000_000_001;
    let user = customer(&w, "alice@x.io", alice, true).await;
    let _bot = start_bot(&w, timing(Duration::from_secs(3600)));
    listed(&w.fake).await;

    deliver(&w, "d-pay-1", &order("order.completed", 7001, "alice@x.io")).await;
    let f = w.fake.clone();
    eventually("role granted", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, alice) }
    })
    .await;
    let grant = role_requests_for(&w.fake, alice);
    assert_eq!(grant.len(), 1, "{grant:?}");
    assert_eq!(grant[0].method, "PUT");
    assert!(
        grant[0]
            .audit_reason
            .as_deref()
            .is_some_and(|r| r.starts_with("G3 role sync: ")),
        "{:?}",
        grant[0].audit_reason
    );
    let ww = &w;
    let u = user.clone();
    eventually("applied recorded", Duration::from_secs(5), || {
        let u = u.clone();
        async move {
            let s = role_state(ww, &u).await;
            s.applied == Some(true)
                && s.applied_discord_user_id == Some(alice.to_string())
                && s.applied_at.is_some()
        }
    })
    .await;

    // Leaving and rejoining, reported by the gateway: the role comes back.
    let f = w.fake.clone();
    eventually("a gateway session", Duration::from_secs(10), || {
        let f = f.clone();
        async move { f.gateway_sessions() == 1 }
    })
    .await;
    assert!(w.fake.remove_member(GUILD, alice));
    assert_eq!(w.fake.member_join(GUILD, alice), 1);
    let f = w.fake.clone();
    eventually("role restored on rejoining", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, alice) }
    })
    .await;
    assert_eq!(role_requests_for(&w.fake, alice).len(), 2);

    deliver(
        &w,
        "d-dispute-1",
        &order("order.disputed", 7001, "alice@x.io"),
    )
    .await;
    let disputed = Instant::now();
    let f = w.fake.clone();
    eventually(
        "role removed after the dispute",
        Duration::from_secs(5),
        || {
            let f = f.clone();
            async move { !has_vip(&f, alice) }
        },
    )
    .await;
    assert!(disputed.elapsed() < Duration::from_secs(5));
    let u = user.clone();
    eventually("removal recorded", Duration::from_secs(5), || {
        let u = u.clone();
        async move {
            let s = role_state(ww, &u).await;
            !s.desired && s.applied == Some(false) && s.applied_discord_user_id.is_none()
        }
    })
    .await;
    assert!(drift_repairs(&w).await.is_empty(), "nothing drifted");
}

#[tokio::test]
async fn a_cancelled_subscription_keeps_the_role_until_its_period_ends() {
    let w = world(5).await;
    let bob = 930_000_000_000_000_002;
    let user = customer(&w, "bob@x.io", bob, true).await;
    // The period ends an hour from now; role sync's clock gets there when the test moves it,
    // so nothing below depends on how fast the machine is.
    let end = OffsetDateTime::now_utc() + time::Duration::hours(1);
    deliver(
        &w,
        "d-sub-1",
        &subscription("subscription.created", 8001, "bob@x.io", end),
    )
    .await;
    let clock = Clock::default();
    let _sync = start_roles_on(&w, timing(Duration::from_millis(500)), clock.clone());
    let f = w.fake.clone();
    eventually("role granted", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, bob) }
    })
    .await;

    deliver(
        &w,
        "d-cancel-1",
        &subscription("subscription.cancelled", 8001, "bob@x.io", end),
    )
    .await;
    // Reconciliation runs every 0.5 s: two passes later, still before the period ends on role
    // sync's clock, the role is still there.
    let ww = &w;
    let passes = |f: &FakeDiscord| {
        f.requests()
            .iter()
            .filter(|r| r.path.ends_with("/members") && r.method == "GET")
            .count()
    };
    let seen = passes(&w.fake);
    let f = w.fake.clone();
    eventually(
        "two passes after the cancellation",
        Duration::from_secs(5),
        || {
            let f = f.clone();
            async move { passes(&f) >= seen + 2 }
        },
    )
    .await;
    assert!(clock.now() < end);
    assert!(has_vip(&w.fake, bob), "removed before the period ended");
    assert!(role_state(ww, &user).await.desired);

    // The period ends: the next pass takes the role back.
    clock.advance(Duration::from_secs(3600 + 60));
    assert!(clock.now() >= end);
    let f = w.fake.clone();
    eventually(
        "role removed after the period",
        Duration::from_secs(15),
        || {
            let f = f.clone();
            async move { !has_vip(&f, bob) }
        },
    )
    .await;
    assert!(!role_state(ww, &user).await.desired);
    let requests = role_requests_for(&w.fake, bob);
    let methods: Vec<&str> = requests.iter().map(|r| r.method.as_str()).collect();
    assert_eq!(methods, ["PUT", "DELETE"]);
    assert!(drift_repairs(&w).await.is_empty(), "an expiry is not drift");
}

#[tokio::test]
async fn reconciliation_repairs_drift_across_pages_and_leaves_other_roles_alone() {
    let w = world(5).await;
    let carol = 930_000_000_000_000_003;
    let carol_user = customer(&w, "carol@x.io", carol, true).await;
    deliver(&w, "d-pay-3", &order("order.completed", 7003, "carol@x.io")).await;
    // A thousand bystanders, so the guild takes two pages to list; the non-payer is on page 2.
    for i in 0..1000u64 {
        w.fake.add_member(GUILD, 940_000_000_000_000_000 + i);
    }
    let stranger = 950_000_000_000_000_001;
    w.fake.add_member(GUILD, stranger);
    let sync = start_roles(&w, timing(Duration::from_millis(700)));
    let f = w.fake.clone();
    eventually("role granted", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, carol) }
    })
    .await;
    let ww = &w;
    let u = carol_user.clone();
    eventually("applied recorded", Duration::from_secs(5), || {
        let u = u.clone();
        async move { role_state(ww, &u).await.applied == Some(true) }
    })
    .await;

    // Moderators: take VIP from the payer, give VIP to a non-payer; both also get an unmanaged role.
    assert!(w.fake.set_member_roles(GUILD, carol, vec![OTHER]));
    assert!(w.fake.set_member_roles(GUILD, stranger, vec![OTHER, VIP]));
    let f = w.fake.clone();
    eventually("drift repaired", Duration::from_secs(10), || {
        let f = f.clone();
        async move {
            f.member_roles(GUILD, carol)
                .unwrap_or_default()
                .contains(&VIP)
                && f.member_roles(GUILD, stranger) == Some(vec![OTHER])
        }
    })
    .await;
    let mut carol_roles = w.fake.member_roles(GUILD, carol).unwrap();
    carol_roles.sort_unstable();
    assert_eq!(carol_roles, vec![VIP, OTHER]);
    assert!(
        w.fake
            .role_requests()
            .iter()
            .all(|r| r.path.ends_with(&format!("/roles/{VIP}"))),
        "an unmanaged role was touched"
    );
    let listings: Vec<Option<String>> = w
        .fake
        .requests()
        .into_iter()
        .filter(|r| r.method == "GET" && r.path.ends_with("/members"))
        .map(|r| r.query)
        .collect();
    assert!(
        listings
            .iter()
            .any(|q| q.as_deref().is_some_and(|q| q.contains("after="))),
        "the second page was never asked for: {listings:?}"
    );

    eventually("repairs audited", Duration::from_secs(5), || async move {
        drift_repairs(ww).await.len() >= 2
    })
    .await;
    let repairs = drift_repairs(&w).await;
    assert_eq!(repairs.len(), 2, "{repairs:?}");
    assert!(repairs.iter().all(|r| r.data.actor == "bot"));
    let targets: Vec<&str> = repairs
        .iter()
        .filter_map(|r| r.data.target.as_deref())
        .collect();
    assert!(targets.contains(&carol_user.as_str()), "{targets:?}");
    assert!(
        targets.contains(&format!("discord:{stranger}").as_str()),
        "{targets:?}"
    );
    // Repaired once: later passes find nothing to do.
    let before = w.fake.role_requests().len();
    let f = w.fake.clone();
    let seen = f
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/members"))
        .count();
    eventually("two more passes", Duration::from_secs(10), || {
        let f = f.clone();
        async move {
            f.requests()
                .iter()
                .filter(|r| r.path.ends_with("/members"))
                .count()
                >= seen + 4
        }
    })
    .await;
    assert_eq!(w.fake.role_requests().len(), before);
    assert_eq!(drift_repairs(&w).await.len(), 2);
    drop(sync);
}

#[tokio::test]
async fn members_get_their_role_when_they_join_and_again_when_they_rejoin() {
    let w = world(5).await;
    let dave = 930_000_000_000_000_004;
    // Linked and paid, but not in the guild yet.
    let user = customer(&w, "dave@x.io", dave, false).await;
    let sync = start_roles(&w, timing(Duration::from_secs(3600)));
    listed(&w.fake).await;
    deliver(&w, "d-pay-4", &order("order.completed", 7004, "dave@x.io")).await;
    let ww = &w;
    let u = user.clone();
    eventually("recorded as not in guild", Duration::from_secs(5), || {
        let u = u.clone();
        async move {
            let s = role_state(ww, &u).await;
            s.applied == Some(false) && s.last_error == Some(roles::not_in_guild(&dave.to_string()))
        }
    })
    .await;
    // It waits for the join instead of trying again and again: changes are handled in order,
    // so once a later customer's role is granted, a retry of Dave's would have been sent.
    let hank = 930_000_000_000_000_009;
    customer(&w, "hank@x.io", hank, true).await;
    deliver(&w, "d-pay-9", &order("order.completed", 7009, "hank@x.io")).await;
    let f = w.fake.clone();
    eventually("a later change handled", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, hank) }
    })
    .await;
    let tries = role_requests_for(&w.fake, dave).len();
    assert_eq!(tries, 1);
    let s = role_state(&w, &user).await;
    assert_eq!(s.next_retry_at, None);

    w.fake.add_member(GUILD, dave);
    sync.joins
        .send(MemberJoined {
            guild_id: GUILD,
            user_id: dave,
        })
        .await
        .unwrap();
    let f = w.fake.clone();
    eventually("role granted on joining", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, dave) }
    })
    .await;
    let u = user.clone();
    eventually("applied recorded", Duration::from_secs(5), || {
        let u = u.clone();
        async move {
            let s = role_state(ww, &u).await;
            s.applied == Some(true) && s.last_error.is_none()
        }
    })
    .await;

    // Leaves (roles go with them) and comes back.
    assert!(w.fake.remove_member(GUILD, dave));
    w.fake.add_member(GUILD, dave);
    assert!(!has_vip(&w.fake, dave));
    sync.joins
        .send(MemberJoined {
            guild_id: GUILD,
            user_id: dave,
        })
        .await
        .unwrap();
    let f = w.fake.clone();
    eventually("role restored on rejoining", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, dave) }
    })
    .await;
    // A join elsewhere is not ours.
    sync.joins
        .send(MemberJoined {
            guild_id: GUILD + 1,
            user_id: dave,
        })
        .await
        .unwrap();
    assert!(drift_repairs(&w).await.is_empty(), "a rejoin is not drift");
}

#[tokio::test]
async fn a_bot_role_below_the_managed_role_pauses_role_sync_with_a_clear_error() {
    // The test runtime runs on this thread only, so every task logs here.
    let (logs, _logging) = Logs::capture();

    let w = world(2).await;
    let erin = 930_000_000_000_000_005;
    let user = customer(&w, "erin@x.io", erin, true).await;
    deliver(&w, "d-pay-5", &order("order.completed", 7005, "erin@x.io")).await;
    let _bot = start_bot(&w, timing(Duration::from_secs(3600)));

    let f = w.fake.clone();
    let roles_path = format!("/api/v10/guilds/{GUILD}/roles");
    let rp = roles_path.clone();
    eventually("checked three times", Duration::from_secs(10), || {
        let f = f.clone();
        let rp = rp.clone();
        async move { f.requests().iter().filter(|r| r.path == rp).count() >= 3 }
    })
    .await;
    assert!(
        w.fake.role_requests().is_empty(),
        "role requests while paused"
    );
    assert!(!has_vip(&w.fake, erin));
    let text = logs.text();
    assert!(
        text.contains("role sync paused")
            && text.contains("\"VIP\"")
            && text.contains("position 3")
            && text.contains("\"g3-bot\" (position 2)"),
        "{text}"
    );
    assert_eq!(role_state(&w, &user).await.applied, None);

    // An admin moves the bot's role up: the next check lets role sync run.
    w.fake.add_guild_role(
        GUILD,
        FakeRole::new(BOT_ROLE, "g3-bot", 5, permissions::MANAGE_ROLES),
    );
    let f = w.fake.clone();
    eventually("role granted after the fix", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, erin) }
    })
    .await;
    assert!(logs.text().contains("role sync running"));
}

#[tokio::test]
async fn a_relink_moves_the_role_and_an_unlink_removes_it() {
    let w = world(5).await;
    let (old, new) = (930_000_000_000_000_006, 930_000_000_000_000_007);
    let user = customer(&w, "frank@x.io", old, true).await;
    w.fake.add_member(GUILD, new);
    deliver(&w, "d-pay-6", &order("order.completed", 7006, "frank@x.io")).await;
    let _sync = start_roles(&w, timing(Duration::from_secs(3600)));
    let f = w.fake.clone();
    eventually("role granted", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, old) }
    })
    .await;

    w.access
        .link_discord(&user, &new.to_string(), Some("frank-alt"), "test")
        .await
        .unwrap();
    let f = w.fake.clone();
    eventually("role moved", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, new) && !has_vip(&f, old) }
    })
    .await;
    let ww = &w;
    let u = user.clone();
    eventually("move recorded", Duration::from_secs(5), || {
        let u = u.clone();
        async move { role_state(ww, &u).await.applied_discord_user_id == Some(new.to_string()) }
    })
    .await;

    w.access
        .unlink_discord(&user, "test", "customer asked")
        .await
        .unwrap();
    let f = w.fake.clone();
    eventually("role removed", Duration::from_secs(5), || {
        let f = f.clone();
        async move { !has_vip(&f, new) && !has_vip(&f, old) }
    })
    .await;
    let u = user.clone();
    eventually("removal recorded", Duration::from_secs(5), || {
        let u = u.clone();
        async move {
            let s = role_state(ww, &u).await;
            s.applied == Some(false) && s.applied_discord_user_id.is_none()
        }
    })
    .await;
    assert!(drift_repairs(&w).await.is_empty());
}

#[tokio::test]
async fn a_discord_500_on_the_grant_is_recorded_and_retried_with_backoff() {
    let w = world(5).await;
    let gina = 930_000_000_000_000_008;
    let user = customer(&w, "gina@x.io", gina, true).await;
    let _sync = start_roles(
        &w,
        Timing {
            retry_base: Duration::from_secs(1),
            ..timing(Duration::from_secs(3600))
        },
    );
    listed(&w.fake).await;

    w.fake.fail_next(Fault::ServerError(500));
    deliver(&w, "d-pay-8", &order("order.completed", 7008, "gina@x.io")).await;
    let ww = &w;
    let u = user.clone();
    eventually("failure recorded", Duration::from_secs(5), || {
        let u = u.clone();
        async move {
            let s = role_state(ww, &u).await;
            s.last_error.as_deref().is_some_and(|e| e.contains("500"))
                && s.attempts == Some(1)
                && s.next_retry_at.is_some()
        }
    })
    .await;
    let f = w.fake.clone();
    eventually("granted on the retry", Duration::from_secs(5), || {
        let f = f.clone();
        async move { has_vip(&f, gina) }
    })
    .await;
    let u = user.clone();
    eventually("error cleared", Duration::from_secs(5), || {
        let u = u.clone();
        async move {
            let s = role_state(ww, &u).await;
            s.applied == Some(true) && s.last_error.is_none() && s.next_retry_at.is_none()
        }
    })
    .await;
    let puts = role_requests_for(&w.fake, gina);
    assert_eq!(puts.len(), 2, "{puts:?}");
    assert_eq!(puts[0].status, 500);
    assert_eq!(puts[1].status, 204);
    let waited = puts[1].at.duration_since(puts[0].at);
    // The first retry waits the base delay, 1 s ± 25 %.
    assert!(
        waited >= Duration::from_millis(700),
        "retried after {waited:?}"
    );
}
