//! Tenant scoping and persistence, on SQLite and (when available) PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use store::crypto::TokenKind;
use store::events::{EventFilter, EventRow};
use store::teams::NewTeam;
use store::tokens::NewToken;
use store::{Scope, StoreError, testing};

fn event(id: &str, team: &str, at: i64, verdict: &str, cost: i64) -> EventRow {
    EventRow {
        event_id: id.to_owned(),
        created_at: at,
        gateway_id: "gw-1".to_owned(),
        gateway_name: "team-a".to_owned(),
        team_id: Some(team.to_owned()),
        token_id: None,
        model: "gpt-4o".to_owned(),
        provider_target: Some("openai".to_owned()),
        provider_kind: Some("openai".to_owned()),
        verdict: verdict.to_owned(),
        reason: None,
        policy: None,
        input_tokens: 10,
        output_tokens: 5,
        cost_micros: cost,
        latency_ms: 12,
        upstream_status: Some(200),
        streamed: false,
        demo: false,
        pii_entities: None,
        unpriced: false,
    }
}

#[tokio::test]
async fn a_team_scope_never_sees_another_team() {
    for tdb in testing::backends().await {
        let org = tdb.db.scoped(Scope::Org);
        let a = org
            .create_team(&NewTeam {
                name: "A".into(),
                slug: "a".into(),
            })
            .await
            .unwrap();
        let b = org
            .create_team(&NewTeam {
                name: "B".into(),
                slug: "b".into(),
            })
            .await
            .unwrap();
        let dup = org
            .create_team(&NewTeam {
                name: "A2".into(),
                slug: "a".into(),
            })
            .await;
        assert!(
            matches!(dup, Err(StoreError::Conflict(_))),
            "{}: {dup:?}",
            tdb.name()
        );

        let key_b = org
            .create_token(&NewToken {
                name: "b-key".into(),
                kind: TokenKind::Gateway,
                team_id: Some(b.team_id.clone()),
                expires_at: None,
                user_id: None,
            })
            .await
            .unwrap();
        let now = store::now_ms();
        store::events::insert_batch(
            &tdb.db,
            &[
                event("e1", &a.team_id, now, "allow", 1_500),
                event("e2", &b.team_id, now, "block", 0),
                event("e3", &b.team_id, now, "allow", 2_000),
            ],
        )
        .await
        .unwrap();

        let as_a = tdb.db.scoped(Scope::Team(a.team_id.clone()));
        let teams: Vec<_> = as_a
            .list_teams()
            .await
            .unwrap()
            .into_iter()
            .map(|t| t.slug)
            .collect();
        assert_eq!(teams, ["a"], "{}", tdb.name());
        assert!(matches!(
            as_a.get_team(&b.team_id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            as_a.create_team(&NewTeam {
                name: "C".into(),
                slug: "c".into()
            })
            .await,
            Err(StoreError::Forbidden)
        ));
        // Another team's token is invisible and cannot be revoked.
        assert!(as_a.list_tokens().await.unwrap().is_empty());
        assert!(matches!(
            as_a.revoke_token(&key_b.row.token_id).await,
            Err(StoreError::NotFound)
        ));
        assert!(matches!(
            as_a.create_token(&NewToken {
                name: "x".into(),
                kind: TokenKind::Gateway,
                team_id: Some(b.team_id.clone()),
                expires_at: None,
                user_id: None,
            })
            .await,
            Err(StoreError::NotFound)
        ));
        // Events: even an explicit filter on team B yields nothing for A.
        let filter = EventFilter {
            limit: 100,
            team_id: Some(b.team_id.clone()),
            ..Default::default()
        };
        assert!(as_a.list_events(&filter).await.unwrap().is_empty());
        let own: Vec<_> = as_a
            .list_events(&EventFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            own.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(),
            ["e1"]
        );
        let totals_a = as_a.totals(now - 60_000).await.unwrap();
        assert_eq!(
            (totals_a.requests, totals_a.blocked, totals_a.cost_micros),
            (1, 0, 1_500)
        );

        let all = org.totals(now - 60_000).await.unwrap();
        assert_eq!(
            (all.requests, all.blocked, all.cost_micros, all.input_tokens),
            (3, 1, 3_500, 30),
            "{}",
            tdb.name()
        );
        tdb.cleanup().await;
    }
}

#[tokio::test]
async fn tokens_authenticate_until_revoked_and_batches_are_idempotent() {
    for tdb in testing::backends().await {
        let org = tdb.db.scoped(Scope::Org);
        let team = org
            .create_team(&NewTeam {
                name: "A".into(),
                slug: "a".into(),
            })
            .await
            .unwrap();
        let created = org
            .create_token(&NewToken {
                name: "k".into(),
                kind: TokenKind::Gateway,
                team_id: Some(team.team_id.clone()),
                expires_at: None,
                user_id: None,
            })
            .await
            .unwrap();
        let found = store::tokens::authenticate(&tdb.db, &created.secret)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(found.team_id.as_deref(), Some(team.team_id.as_str()));
        assert!(
            store::tokens::authenticate(&tdb.db, "kt_gk_wrong")
                .await
                .unwrap()
                .is_none()
        );
        org.revoke_token(&created.row.token_id).await.unwrap();
        assert!(
            store::tokens::authenticate(&tdb.db, &created.secret)
                .await
                .unwrap()
                .is_none()
        );
        let gw_keys = store::tokens::gateway_keys(&tdb.db).await.unwrap();
        assert!(gw_keys[0].revoked_at.is_some());

        // Re-sending a batch (e.g. after a timeout) must not double-count.
        let now = store::now_ms();
        let batch = [event("x1", &team.team_id, now, "allow", 100)];
        store::events::insert_batch(&tdb.db, &batch).await.unwrap();
        store::events::insert_batch(&tdb.db, &batch).await.unwrap();
        let totals = org.totals(now).await.unwrap();
        assert_eq!(
            (totals.requests, totals.cost_micros),
            (1, 100),
            "{}",
            tdb.name()
        );
        // Several events of one rollup row in one batch are all counted.
        let same_row = [
            event("x2", &team.team_id, now, "allow", 10),
            event("x3", &team.team_id, now, "allow", 20),
            event("x1", &team.team_id, now, "allow", 100),
        ];
        store::events::insert_batch(&tdb.db, &same_row)
            .await
            .unwrap();
        let totals = org.totals(now).await.unwrap();
        assert_eq!(
            (totals.requests, totals.cost_micros),
            (3, 130),
            "{}",
            tdb.name()
        );
        assert!(tdb.db.is_ready().await);
        tdb.cleanup().await;
    }
}
