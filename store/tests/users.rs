//! Console users managed by org admins: invite with a role (and a team for
//! team roles), change roles, remove; every change audited; team scopes
//! cannot manage users. Runs on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use store::teams::NewTeam;
use store::{Scope, StoreError, testing};

#[tokio::test]
async fn admins_invite_change_and_remove_users_and_teams_cannot() {
    for tdb in testing::backends().await {
        let db = &tdb.db;
        let org = db
            .scoped(Scope::Org)
            .acting_as("admin@example.com (console)");
        let team = org
            .create_team(&NewTeam {
                name: "Payments".into(),
                slug: "payments".into(),
            })
            .await
            .unwrap();

        // Team roles need a team; admins have none; unknown roles are refused.
        for (role, team_id) in [
            ("team_lead", None),
            ("member", None),
            ("admin", Some(team.team_id.as_str())),
            ("root", None),
        ] {
            let err = org
                .invite_user("x@example.com", role, team_id, "hash")
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Invalid(_)), "{role}: {err:?}");
        }
        assert!(matches!(
            org.invite_user("not-an-email", "viewer", None, "hash")
                .await
                .unwrap_err(),
            StoreError::Invalid(_)
        ));

        let lead = org
            .invite_user("Lead@Example.com", "team_lead", Some(&team.team_id), "hash")
            .await
            .unwrap();
        assert_eq!(lead.email, "lead@example.com");
        assert_eq!(lead.team_id.as_deref(), Some(team.team_id.as_str()));
        assert!(matches!(
            org.invite_user("lead@example.com", "viewer", None, "hash")
                .await
                .unwrap_err(),
            StoreError::Conflict(_)
        ));

        // A team scope sees its members only and manages nobody.
        let scoped = db.scoped(Scope::Team(team.team_id.clone()));
        assert_eq!(scoped.list_users().await.unwrap().len(), 1);
        assert!(matches!(
            scoped
                .invite_user("y@example.com", "member", Some(&team.team_id), "hash")
                .await
                .unwrap_err(),
            StoreError::Forbidden
        ));
        assert!(matches!(
            scoped.remove_user(&lead.user_id).await.unwrap_err(),
            StoreError::Forbidden
        ));
        assert!(matches!(
            scoped
                .set_user_role(&lead.user_id, "admin", None)
                .await
                .unwrap_err(),
            StoreError::Forbidden
        ));

        let viewer = org
            .set_user_role(&lead.user_id, "viewer", None)
            .await
            .unwrap();
        assert_eq!((viewer.role.as_str(), viewer.team_id), ("viewer", None));
        org.remove_user(&lead.user_id).await.unwrap();
        assert!(
            store::users::get(db, &lead.user_id)
                .await
                .unwrap()
                .is_none()
        );
        assert!(matches!(
            org.remove_user(&lead.user_id).await.unwrap_err(),
            StoreError::NotFound
        ));

        let actions: Vec<String> = org
            .list_audit(&store::audit::AuditFilter {
                limit: 100,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_iter()
            .map(|a| a.action)
            .collect();
        for action in ["user.invite", "user.role", "user.remove"] {
            assert!(
                actions.iter().any(|a| a == action),
                "{action} in {actions:?}"
            );
        }
        tdb.cleanup().await;
    }
}
