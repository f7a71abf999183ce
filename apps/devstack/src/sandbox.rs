//! The Discord sandbox: the bot mirrors into testkit's fake Discord (serenity's rate limiter on,
//! over the fake's TLS proxy), and a small page shows what each customer channel now holds, so
//! mirroring can be seen working without a Discord account.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, extract::State, response::Html, routing::get};
use testkit::discord::FakeDiscord;

/// The running sandbox page (the fake itself lives as long as its clones).
pub struct Sandbox {
    pub fake: FakeDiscord,
    pub addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Page {
    fake: FakeDiscord,
    /// (route name, customer channel id)
    channels: Vec<(String, u64)>,
}

impl Sandbox {
    /// Starts the fake Discord and the page on a free loopback port.
    pub async fn start(channels: Vec<(String, u64)>) -> anyhow::Result<Sandbox> {
        let fake = FakeDiscord::spawn().await;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new().route("/", get(page)).with_state(Page {
            fake: fake.clone(),
            channels,
        });
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Sandbox {
            fake,
            addr,
            stop,
            task,
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The HTTP client the bot's serenity `Http` uses to reach the fake.
    pub fn discord_client(&self, timeout: Duration) -> reqwest::Client {
        self.fake.client(timeout)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

async fn page(State(p): State<Page>) -> Html<String> {
    let mut out = String::from(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>Discord sandbox</title><style>body{font-family:sans-serif;max-width:60em;margin:auto}\
         .m{border:1px solid #ccc;border-radius:6px;padding:.5em;margin:.5em 0}\
         pre{white-space:pre-wrap;margin:0}.e{color:#555;font-size:.9em}</style></head><body>\
         <h1>Discord sandbox</h1><p>The bot mirrors signals into a fake Discord; these are the \
         customer channels as they stand now (refreshes every 5 s).</p>",
    );
    for (name, channel) in &p.channels {
        let messages = p.fake.messages(*channel);
        out.push_str(&format!(
            "<h2>#{} <small>({channel}, {} message(s))</small></h2>",
            escape(name),
            messages.len()
        ));
        for m in messages.iter().rev() {
            out.push_str("<div class=\"m\">");
            if !m.content.is_empty() {
                out.push_str(&format!("<pre>{}</pre>", escape(&m.content)));
            }
            for e in &m.embeds {
                let title = e.get("title").and_then(|v| v.as_str()).unwrap_or_default();
                let desc = e
                    .get("description")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default();
                let fields: Vec<String> = e
                    .get("fields")
                    .and_then(|v| v.as_array())
                    .map(|fs| {
                        fs.iter()
                            .map(|f| {
                                format!(
                                    "{}: {}",
                                    f.get("name").and_then(|v| v.as_str()).unwrap_or_default(),
                                    f.get("value").and_then(|v| v.as_str()).unwrap_or_default()
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                out.push_str(&format!(
                    "<div class=\"e\"><b>{}</b> {}<br>{}</div>",
                    escape(title),
                    escape(desc),
                    escape(&fields.join(" · "))
                ));
            }
            for a in &m.attachments {
                out.push_str(&format!(
                    "<div class=\"e\">attachment {} ({} bytes)</div>",
                    escape(&a.filename),
                    a.bytes.len()
                ));
            }
            if m.edited_ms.is_some() {
                out.push_str("<div class=\"e\">(edited)</div>");
            }
            out.push_str("</div>");
        }
    }
    out.push_str("</body></html>");
    Html(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_html() {
        assert_eq!(
            super::escape("<b>\"x\" & 'y'</b>"),
            "&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;"
        );
    }
}
