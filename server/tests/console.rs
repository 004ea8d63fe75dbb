//! The console over HTTP (the real `kt serve`, SQLite and PostgreSQL):
//! cross-site form posts are refused, sign-in is throttled per account,
//! every page and form is scoped by role and team, and the Cost Center's CSV
//! export holds exactly what the signed-in user may see. (The pages in a
//! real browser are covered by the Playwright suite in end2end/.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use store::testing::TestDatabase;

#[tokio::test(flavor = "multi_thread")]
async fn console_forms_are_same_origin_throttled_and_scoped_by_role() {
    for db in store::testing::backends().await {
        console(&db).await;
        db.cleanup().await;
    }
}

/// A browser-like client holding the console's session cookie.
struct Browser {
    base: String,
    client: reqwest::Client,
    session: std::sync::Mutex<Option<String>>,
}

impl Browser {
    fn new(base: &str) -> Browser {
        Browser {
            base: base.to_owned(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            session: Default::default(),
        }
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("Accept", "text/html");
        if let Some(cookie) = self.session.lock().unwrap().clone() {
            req = req.header("Cookie", cookie);
        }
        req
    }

    /// Keeps the session cookie a response sets (like a browser).
    fn keep_cookie(&self, r: &reqwest::Response) {
        for value in r.headers().get_all("set-cookie") {
            let pair = value
                .to_str()
                .unwrap()
                .split(';')
                .next()
                .unwrap()
                .to_owned();
            if pair.starts_with("kt_session=") {
                *self.session.lock().unwrap() = Some(pair);
            }
        }
    }

    /// Posts a form as the console's own page would (same origin).
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let r = self
            .request(reqwest::Method::POST, path)
            .header("Origin", &self.base)
            .header("Sec-Fetch-Site", "same-origin")
            .form(form)
            .send()
            .await
            .unwrap();
        self.keep_cookie(&r);
        r
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = self
            .request(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap();
        self.keep_cookie(&r);
        (r.status().as_u16(), r.text().await.unwrap())
    }

    /// Signs in; returns where the console sent the browser.
    async fn sign_in(&self, email: &str, password: &str) -> String {
        let r = self
            .post("/api/login", &[("email", email), ("password", password)])
            .await;
        assert_eq!(r.status().as_u16(), 302, "sign-in answers with a redirect");
        r.headers()["location"].to_str().unwrap().to_owned()
    }
}

async fn console(db: &TestDatabase) {
    let s = start_stack(db).await;
    let b = s.backend;
    let eng = s.team_with_key("Engineering", "eng").await;
    let ops = s.team_with_key("Operations", "ops").await;
    let base = s.serve.url.clone();

    s.create_user("admin@example.com", "admin", "admin password 123")
        .await;
    s.create_user("lead@example.com", "viewer", "lead password 123")
        .await;
    let r = s
        .admin
        .put(
            &format!("/v1/teams/{}/members/lead@example.com", eng.team_id),
            &serde_json::json!({"role": "team_lead"}),
        )
        .await;
    assert_eq!(r.status, 200, "[{b}] {r}");

    // --- CSRF: a form posted from another site is refused, signed in or not.
    let admin = Browser::new(&base);
    assert_eq!(
        admin
            .sign_in("admin@example.com", "admin password 123")
            .await,
        "/"
    );
    for (header, value) in [
        ("Origin", "http://evil.example"),
        ("Sec-Fetch-Site", "cross-site"),
    ] {
        let r = admin
            .request(reqwest::Method::POST, "/api/allocate_credit")
            .header(header, value)
            .form(&[
                ("team_id", eng.team_id.as_str()),
                ("amount", "5"),
                ("reason", "csrf"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.status().as_u16(),
            403,
            "[{b}] cross-site post ({header}: {value})"
        );
    }
    let balance = s
        .admin
        .get(&format!("/v1/wallets/balance?team_id={}", eng.team_id))
        .await;
    assert_eq!(
        balance.body["allocated"], 0.0,
        "[{b}] nothing was allocated: {balance}"
    );

    // --- The admin allocates credit from the Cost Center form.
    let r = admin
        .post(
            "/api/allocate_credit",
            &[
                ("team_id", eng.team_id.as_str()),
                ("amount", "12.5"),
                ("reason", "pilot"),
            ],
        )
        .await;
    assert_eq!(r.status().as_u16(), 302, "[{b}]");
    let (status, page) = admin.get("/cost").await;
    assert_eq!(status, 200, "[{b}]");
    assert!(
        page.contains("Allocated $12.5000 to the wallet"),
        "[{b}] the flash shows the outcome"
    );
    let (_, again) = admin.get("/cost").await;
    assert!(
        !again.contains("Allocated $12.5000"),
        "[{b}] a flash is shown once"
    );
    let balance = s
        .admin
        .get(&format!("/v1/wallets/balance?team_id={}", eng.team_id))
        .await;
    assert_eq!(balance.body["allocated"], 12.5, "[{b}] {balance}");
    // A bad amount is explained, and changes nothing.
    admin
        .post(
            "/api/allocate_credit",
            &[
                ("team_id", eng.team_id.as_str()),
                ("amount", "lots"),
                ("reason", ""),
            ],
        )
        .await;
    let (_, page) = admin.get("/cost").await;
    assert!(
        page.contains("is not a number of USD"),
        "[{b}] {}",
        excerpt(&page, "flash")
    );

    // --- The team lead sees their team only, and cannot administer.
    let lead = Browser::new(&base);
    assert_eq!(
        lead.sign_in("lead@example.com", "lead password 123").await,
        "/"
    );
    let (status, page) = lead.get("/settings/users").await;
    assert_eq!(status, 403, "[{b}] a team lead cannot open Users");
    assert!(
        page.contains("Your role does not give access to this page."),
        "[{b}]"
    );
    let (status, page) = lead.get("/settings/teams").await;
    assert_eq!(status, 200, "[{b}]");
    assert!(
        page.contains("data-team=\"eng\"") && !page.contains("data-team=\"ops\""),
        "[{b}] only their team"
    );
    let (_, page) = lead.get("/cost").await;
    assert!(
        page.contains("data-team=\"eng\"") && !page.contains("data-team=\"ops\""),
        "[{b}] budgets of their team only"
    );
    assert!(
        !page.contains("allocate-form"),
        "[{b}] no allocation form for a team lead"
    );
    lead.post(
        "/api/allocate_credit",
        &[
            ("team_id", eng.team_id.as_str()),
            ("amount", "1000"),
            ("reason", "me"),
        ],
    )
    .await;
    let (_, page) = lead.get("/cost").await;
    assert!(page.contains("only org admins allocate credit"), "[{b}]");
    let balance = s
        .admin
        .get(&format!("/v1/wallets/balance?team_id={}", eng.team_id))
        .await;
    assert_eq!(
        balance.body["allocated"], 12.5,
        "[{b}] the team lead's post changed nothing"
    );
    // Keys: the lead creates one for their team; asking for another team's is refused.
    lead.post(
        "/api/create_key",
        &[
            ("name", "ops-key"),
            ("kind", "gateway"),
            ("team_id", ops.team_id.as_str()),
            ("expires", ""),
        ],
    )
    .await;
    let (_, page) = lead.get("/settings/keys").await;
    assert!(
        !page.contains("data-testid=\"secret\""),
        "[{b}] no key for another team"
    );
    lead.post(
        "/api/create_key",
        &[
            ("name", "eng-ci"),
            ("kind", "gateway"),
            ("team_id", eng.team_id.as_str()),
            ("expires", ""),
        ],
    )
    .await;
    let (_, page) = lead.get("/settings/keys").await;
    let secret = between(&page, "data-testid=\"secret\" id=\"secret-once\">", "<")
        .expect("the new key, once");
    assert!(secret.starts_with("kt_gk_"), "[{b}] {secret}");
    let (_, page) = lead.get("/settings/keys").await;
    assert!(
        !page.contains(&secret),
        "[{b}] the secret is shown only once"
    );
    assert!(page.contains("data-key-name=\"eng-ci\""), "[{b}]");
    assert!(
        !page.contains("data-key-name=\"ops-app\""),
        "[{b}] another team's keys are invisible"
    );

    // --- CSV export: the admin's has both teams; the lead's only theirs.
    let csv = |who: &Browser| {
        let req = who.request(reqwest::Method::GET, "/cost/export.csv?range=30d");
        async move {
            let r = req.send().await.unwrap();
            assert_eq!(r.headers()["content-type"], "text/csv; charset=utf-8");
            r.text().await.unwrap()
        }
    };
    let all = csv(&admin).await;
    assert!(
        all.starts_with("section,key,requests,tokens,cost_usd\r\n"),
        "[{b}] {all}"
    );
    assert!(
        all.contains("\r\neng,") && all.contains("\r\nops,"),
        "[{b}] {all}"
    );
    assert!(
        all.contains("eng,0.000000,,0.000000,12.500000,0.000000,0.000000,12.500000"),
        "[{b}] {all}"
    );
    let mine = csv(&lead).await;
    assert!(
        mine.contains("\r\neng,") && !mine.contains("\r\nops,"),
        "[{b}] {mine}"
    );
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = anonymous
        .get(format!("{base}/cost/export.csv"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "[{b}] signed out → sign-in page");

    // --- Sign-in throttling: after 5 failures even the right password waits.
    let intruder = Browser::new(&base);
    for _ in 0..5 {
        assert_eq!(
            intruder.sign_in("lead@example.com", "wrong").await,
            "/login?error=invalid",
            "[{b}]"
        );
    }
    let to = intruder
        .sign_in("lead@example.com", "lead password 123")
        .await;
    assert!(to.starts_with("/login?error=throttled"), "[{b}] {to}");
    // Other accounts are unaffected.
    assert_eq!(
        Browser::new(&base)
            .sign_in("admin@example.com", "admin password 123")
            .await,
        "/"
    );
}

fn between(text: &str, start: &str, end: &str) -> Option<String> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(text[from..to].to_owned())
}

fn excerpt(page: &str, around: &str) -> String {
    page.find(around)
        .map(|i| page[i.saturating_sub(100)..(i + 300).min(page.len())].to_owned())
        .unwrap_or_else(|| format!("({around} not found)"))
}
