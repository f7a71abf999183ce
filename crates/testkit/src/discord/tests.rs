//! serenity's own `Http`, rate limiter on, against the fake through the TLS proxy.

use std::time::{Duration, Instant};

use serenity::{
    all::{ChannelId, CreateAttachment, CreateMessage, EditAttachments, EditMessage, MessageId},
    http::{Http, HttpBuilder},
    model::channel::Nonce,
};

use super::*;

async fn setup() -> (FakeDiscord, Http) {
    let fake = FakeDiscord::spawn().await;
    let http = HttpBuilder::new("test-token")
        .client(fake.client(Duration::from_secs(5)))
        .build();
    (fake, http)
}

#[tokio::test]
async fn serenity_sends_through_the_proxy() {
    let (fake, http) = setup().await;
    let sent = ChannelId::new(42)
        .send_message(&http, CreateMessage::new().content("hello"))
        .await
        .expect("message sent");
    let stored = fake.messages(42);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].content, "hello");
    assert_eq!(sent.id.get(), stored[0].id);
    assert_eq!(sent.author.id.get(), BOT_USER_ID);
    let listed = ChannelId::new(42)
        .messages(&http, serenity::all::GetMessages::new().limit(10))
        .await
        .expect("listed");
    assert_eq!(listed.len(), 1);
}

#[tokio::test]
async fn a_scripted_429_is_retried_by_serenity() {
    let (fake, http) = setup().await;
    fake.fail_next(Fault::RateLimited { retry_after: 0.3 });
    ChannelId::new(7)
        .send_message(&http, CreateMessage::new().content("after 429"))
        .await
        .expect("sent after the retry");
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0].status, 429);
    assert_eq!(reqs[1].status, 200);
    let waited = reqs[1].at.duration_since(reqs[0].at);
    assert!(waited >= Duration::from_millis(290), "waited {waited:?}");
    assert_eq!(fake.messages(7).len(), 1);
}

#[tokio::test]
async fn the_channel_limit_makes_serenity_wait_instead_of_429() {
    let (fake, http) = setup().await;
    fake.set_channel_limit(Some(ChannelLimit {
        limit: 3,
        window: Duration::from_millis(600),
    }));
    let started = Instant::now();
    for i in 0..7 {
        ChannelId::new(9)
            .send_message(&http, CreateMessage::new().content(format!("m{i}")))
            .await
            .expect("sent");
    }
    assert!(started.elapsed() >= Duration::from_millis(1_100));
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.status == 200 && !r.over_limit)
    );
    assert_eq!(fake.messages(9).len(), 7);
}

#[tokio::test]
async fn an_enforced_nonce_returns_the_first_message() {
    let (fake, http) = setup().await;
    let send = || {
        ChannelId::new(5).send_message(
            &http,
            CreateMessage::new()
                .content("once")
                .nonce(Nonce::String("n-1".into()))
                .enforce_nonce(true),
        )
    };
    let a = send().await.expect("first");
    let b = send().await.expect("second");
    assert_eq!(a.id, b.id);
    assert_eq!(fake.messages(5).len(), 1);
    assert_eq!(fake.creates().len(), 2);
    assert_eq!(fake.creates()[1].nonce.as_deref(), Some("n-1"));
}

#[tokio::test]
async fn replies_reference_their_message_and_fail_when_it_is_gone() {
    use serenity::all::{MessageReference, MessageReferenceKind, MessageType};
    let (fake, http) = setup().await;
    let channel = ChannelId::new(13);
    let first = channel.say(&http, "the call").await.expect("sent");
    let reply = |to: MessageId, fail: bool| {
        channel.send_message(
            &http,
            CreateMessage::new().content("TP1 hit").reference_message(
                MessageReference::new(MessageReferenceKind::Default, channel)
                    .message_id(to)
                    .fail_if_not_exists(fail),
            ),
        )
    };
    let sent = reply(first.id, true).await.expect("replied");
    let listed = channel
        .messages(&http, serenity::all::GetMessages::new().limit(10))
        .await
        .expect("listed");
    let fetched = listed.iter().find(|m| m.id == sent.id).expect("listed");
    assert_eq!(fetched.kind, MessageType::InlineReply);
    assert_eq!(
        fetched
            .message_reference
            .as_ref()
            .and_then(|r| r.message_id),
        Some(first.id)
    );
    assert_eq!(fake.messages(13)[1].reply_to, Some(first.id.get()));

    fake.delete_by_hand(13, first.id.get());
    let refused = reply(first.id, true)
        .await
        .expect_err("the message is gone");
    let serenity::Error::Http(serenity::http::HttpError::UnsuccessfulRequest(r)) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!((r.status_code.as_u16(), r.error.code), (400, 50035));
    assert_eq!(r.error.errors[0].code, "REPLIES_UNKNOWN_MESSAGE");
    assert_eq!(r.error.errors[0].path, "message_reference");
    // Told not to fail, Discord sends it as a plain message.
    let plain = reply(first.id, false).await.expect("sent");
    assert!(plain.message_reference.is_none());
    assert_eq!(fake.messages(13).len(), 2);
}

#[tokio::test]
async fn attachments_upload_and_edits_keep_or_replace_them() {
    let (fake, http) = setup().await;
    let channel = ChannelId::new(11);
    let sent = channel
        .send_message(
            &http,
            CreateMessage::new()
                .content("with file")
                .add_file(CreateAttachment::bytes(crate::cdn::PNG, "chart.png")),
        )
        .await
        .expect("sent");
    assert_eq!(sent.attachments.len(), 1);
    let stored = fake.messages(11);
    assert_eq!(stored[0].attachments[0].bytes, crate::cdn::PNG);
    assert_eq!(stored[0].attachments[0].filename, "chart.png");

    let keep = EditAttachments::keep_all(&sent)
        .add(CreateAttachment::bytes(b"%PDF-1.4".to_vec(), "doc.pdf"));
    channel
        .edit_message(
            &http,
            sent.id,
            EditMessage::new().content("edited").attachments(keep),
        )
        .await
        .expect("edited");
    let stored = fake.messages(11);
    assert_eq!(stored[0].content, "edited");
    let names: Vec<_> = stored[0]
        .attachments
        .iter()
        .map(|a| a.filename.as_str())
        .collect();
    assert_eq!(names, ["chart.png", "doc.pdf"]);

    channel
        .edit_message(
            &http,
            sent.id,
            EditMessage::new().attachments(EditAttachments::new()),
        )
        .await
        .expect("edited");
    assert!(fake.messages(11)[0].attachments.is_empty());

    channel
        .delete_message(&http, sent.id)
        .await
        .expect("deleted");
    assert!(fake.messages(11).is_empty());
    let err = channel
        .edit_message(
            &http,
            MessageId::new(sent.id.get()),
            EditMessage::new().content("x"),
        )
        .await
        .expect_err("gone");
    assert!(format!("{err:?}").contains("10008"), "{err:?}");
}

#[tokio::test]
async fn server_errors_and_stalls_reach_the_client() {
    let (fake, _) = setup().await;
    let http = HttpBuilder::new("test-token")
        .client(fake.client(Duration::from_millis(300)))
        .build();
    fake.fail_next(Fault::ServerError(502));
    let err = ChannelId::new(3)
        .send_message(&http, CreateMessage::new().content("x"))
        .await
        .expect_err("502 is not retried by serenity");
    assert!(format!("{err:?}").contains("502"), "{err:?}");
    assert!(fake.messages(3).is_empty());

    fake.fail_next(Fault::Stall(Duration::from_secs(2)));
    ChannelId::new(3)
        .send_message(&http, CreateMessage::new().content("stalled"))
        .await
        .expect_err("the answer is lost to the timeout");
    assert_eq!(fake.messages(3).len(), 1, "but the effect happened");
}

#[tokio::test]
async fn the_proxy_refuses_other_hosts() {
    let fake = FakeDiscord::spawn().await;
    let client = fake.client(Duration::from_secs(2));
    let err = client
        .get("https://example.com/")
        .send()
        .await
        .expect_err("refused");
    assert!(err.is_connect() || err.is_request(), "{err:?}");
    let ok = client
        .get("https://discord.com/api/v10/users/@me")
        .send()
        .await
        .expect("discord.com is served locally");
    assert!(ok.status().is_success());
}

#[tokio::test]
async fn member_roles_are_added_and_removed() {
    use serenity::all::{GuildId, RoleId, UserId};
    let (fake, http) = setup().await;
    let (guild, user, role) = (GuildId::new(1), UserId::new(2), RoleId::new(3));
    let err = http
        .add_member_role(guild, user, role, None)
        .await
        .expect_err("not a member yet");
    assert!(format!("{err:?}").contains("10007"), "{err:?}");
    fake.add_member(1, 2);
    http.add_member_role(guild, user, role, Some("paid"))
        .await
        .expect("role added");
    http.add_member_role(guild, user, role, None)
        .await
        .expect("adding again is fine");
    assert_eq!(fake.member_roles(1, 2), Some(vec![3]));
    let member = http.get_member(guild, user).await.expect("member");
    assert_eq!(member.roles, vec![role]);
    http.remove_member_role(guild, user, role, None)
        .await
        .expect("role removed");
    assert_eq!(fake.member_roles(1, 2), Some(vec![]));
}

#[tokio::test]
async fn guild_roles_are_listed_and_the_hierarchy_is_enforced() {
    use serenity::all::{GuildId, Permissions, RoleId, UserId};
    let (fake, http) = setup().await;
    let guild = GuildId::new(5);
    fake.add_guild_role(5, FakeRole::new(50, "bot", 2, permissions::MANAGE_ROLES));
    fake.add_guild_role(5, FakeRole::new(60, "VIP", 3, 0));
    fake.add_guild_role(5, FakeRole::new(70, "Basic", 1, 0));
    let roles = http.get_guild_roles(guild).await.expect("roles");
    let mut seen: Vec<(u64, u16)> = roles.iter().map(|r| (r.id.get(), r.position)).collect();
    seen.sort_unstable();
    assert_eq!(
        seen,
        vec![(5, 0), (50, 2), (60, 3), (70, 1)],
        "@everyone is implied"
    );
    let bot_role = roles.iter().find(|r| r.id.get() == 50).expect("bot role");
    assert_eq!(bot_role.permissions, Permissions::MANAGE_ROLES);
    assert_eq!(bot_role.name, "bot");
    fake.add_member(5, BOT_USER_ID);
    assert!(fake.set_member_roles(5, BOT_USER_ID, vec![50]));
    fake.add_member(5, 8);
    // Below the bot: allowed, and the audit-log reason is recorded decoded.
    http.add_member_role(
        guild,
        UserId::new(8),
        RoleId::new(70),
        Some("paid: plan vip"),
    )
    .await
    .expect("below the bot's role");
    let put = fake.role_requests().pop().expect("recorded");
    assert_eq!(put.audit_reason.as_deref(), Some("paid: plan vip"));
    // Above the bot, or unknown: refused as Discord does.
    let above = http
        .add_member_role(guild, UserId::new(8), RoleId::new(60), None)
        .await
        .expect_err("above the bot's role");
    assert!(format!("{above:?}").contains("50013"), "{above:?}");
    let unknown = http
        .remove_member_role(guild, UserId::new(8), RoleId::new(99), None)
        .await
        .expect_err("unknown role");
    assert!(format!("{unknown:?}").contains("10011"), "{unknown:?}");
    assert_eq!(fake.member_roles(5, 8), Some(vec![70]));
    assert_eq!(fake.role_requests().len(), 3);

    // Listing pages by user id; leaving removes the member.
    for user in 100..103 {
        fake.add_member(5, user);
    }
    let page = http
        .get_guild_members(guild, Some(2), None)
        .await
        .expect("first page");
    let ids: Vec<u64> = page.iter().map(|m| m.user.id.get()).collect();
    assert_eq!(ids, vec![8, 100]);
    let page = http
        .get_guild_members(guild, Some(1000), Some(100))
        .await
        .expect("next page");
    let ids: Vec<u64> = page.iter().map(|m| m.user.id.get()).collect();
    assert_eq!(ids, vec![101, 102, BOT_USER_ID]);
    assert!(fake.remove_member(5, 101));
    assert!(!fake.remove_member(5, 101));
    assert_eq!(fake.member_roles(5, 101), None);
}

#[tokio::test]
async fn oauth_join_adds_a_member_once() {
    let fake = FakeDiscord::spawn().await;
    let client = fake.client(Duration::from_secs(2));
    let token = fake.grant_token(20, &["identify", "guilds.join"]);
    let join = || {
        client
            .put("https://discord.com/api/v10/guilds/10/members/20")
            .header("authorization", "Bot test-token")
            .json(&serde_json::json!({ "access_token": token, "roles": ["30"] }))
            .send()
    };
    assert_eq!(join().await.unwrap().status(), 201);
    assert_eq!(join().await.unwrap().status(), 204);
    assert_eq!(fake.member_roles(10, 20), Some(vec![30]));
}

#[tokio::test]
async fn a_global_429_is_waited_out_by_serenity() {
    let (fake, http) = setup().await;
    fake.fail_next(Fault::GlobalRateLimited { retry_after: 0.2 });
    ChannelId::new(8)
        .send_message(&http, CreateMessage::new().content("after global"))
        .await
        .expect("sent after the global wait");
    let reqs = fake.requests();
    assert_eq!(
        reqs.iter().map(|r| r.status).collect::<Vec<_>>(),
        [429, 200]
    );
    assert!(reqs[1].at.duration_since(reqs[0].at) >= Duration::from_millis(190));
    assert_eq!(fake.messages(8).len(), 1);
}

#[tokio::test]
async fn webhooks_send_edit_and_delete() {
    use serenity::all::{EditWebhookMessage, ExecuteWebhook, WebhookId};
    let (fake, http) = setup().await;
    let (id, token) = fake.create_webhook(77);
    let sent = http
        .execute_webhook(
            WebhookId::new(id),
            None,
            &token,
            true,
            vec![],
            &ExecuteWebhook::new().content("via webhook"),
        )
        .await
        .expect("executed")
        .expect("wait=true returns the message");
    assert_eq!(sent.webhook_id.map(|w| w.get()), Some(id));
    http.edit_webhook_message(
        WebhookId::new(id),
        None,
        &token,
        sent.id,
        &EditWebhookMessage::new().content("edited via webhook"),
        vec![],
    )
    .await
    .expect("edited");
    assert_eq!(fake.messages(77)[0].content, "edited via webhook");
    http.delete_webhook_message(WebhookId::new(id), None, &token, sent.id)
        .await
        .expect("deleted");
    assert!(fake.messages(77).is_empty());
}
