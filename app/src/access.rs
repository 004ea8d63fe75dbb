//! Who may see and do what in the console (both sides: the server enforces
//! it in every server function, the pages use it to show only what works).
//!
//! | role       | scope                  | Dashboard | Cost Center      | keys        | teams, users, secrets |
//! |------------|------------------------|-----------|------------------|-------------|-----------------------|
//! | admin      | every team             | yes       | yes + allocate   | manage      | manage                |
//! | team lead  | own team               | yes       | yes              | manage      | read own team         |
//! | member     | own team               | yes       | yes              | read        | read own team         |
//! | viewer     | own team, or whole org | no        | yes (read-only)  | no          | no                    |
//!
//! Configurations: admins edit every team's, team leads their own, members
//! read their own. Git repositories: org admins only.

use serde::{Deserialize, Serialize};

/// A console role (SPEC §7). Unknown stored values read as [`Role::Viewer`],
/// the least privileged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Role {
    Admin,
    TeamLead,
    Member,
    Viewer,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::TeamLead, Role::Member, Role::Viewer];

    pub fn parse(text: &str) -> Role {
        match text {
            "admin" => Role::Admin,
            "team_lead" => Role::TeamLead,
            "member" => Role::Member,
            _ => Role::Viewer,
        }
    }

    /// The stored name (`team_lead`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::TeamLead => "team_lead",
            Role::Member => "member",
            Role::Viewer => "viewer",
        }
    }

    /// What people read (`Team lead`).
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Org admin",
            Role::TeamLead => "Team lead",
            Role::Member => "Member",
            Role::Viewer => "Viewer",
        }
    }

    pub fn sees_dashboard(self) -> bool {
        self != Role::Viewer
    }

    pub fn sees_keys(self) -> bool {
        self != Role::Viewer
    }

    pub fn manages_keys(self) -> bool {
        matches!(self, Role::Admin | Role::TeamLead)
    }

    pub fn sees_teams(self) -> bool {
        self != Role::Viewer
    }

    /// Add configuration versions and roll back: org admins for every team,
    /// team leads for their own.
    pub fn edits_configs(self) -> bool {
        matches!(self, Role::Admin | Role::TeamLead)
    }

    /// May review escalations (claim, approve, deny): every role but
    /// viewers. Whether someone does, for a team, is the team's choice
    /// (its designated reviewers, or the org admins when it names none),
    /// checked by the store.
    pub fn reviews_escalations(self) -> bool {
        !matches!(self, Role::Viewer)
    }

    /// Read the audit log: org admins (everything), team leads (their team).
    pub fn reads_audit(self) -> bool {
        matches!(self, Role::Admin | Role::TeamLead)
    }

    /// Create, rename and archive teams, invite users, set roles, allocate
    /// credit, manage provider secrets: org admins.
    pub fn administers(self) -> bool {
        self == Role::Admin
    }
}

/// The message of a page the user's role does not open.
pub const FORBIDDEN: &str = "Your role does not give access to this page.";

/// The signed-in user, as pages see them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub email: String,
    pub role: Role,
    /// Their team's slug, for team roles.
    pub team: Option<String>,
}

/// A one-time message carried across a form post's redirect (in the
/// session): the outcome of the action, and a secret to show exactly once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Flash {
    pub ok: bool,
    pub message: String,
    /// A token or password shown once, with a copy button.
    pub secret: Option<String>,
}

/// A page in the navigation: `(path, label, visible for)`.
pub struct NavItem {
    pub href: &'static str,
    pub label: &'static str,
    pub visible: fn(Role) -> bool,
}

/// The top navigation, in order. A page is listed only for roles it works for.
pub const NAV: &[NavItem] = &[
    NavItem {
        href: "/",
        label: "Dashboard",
        visible: Role::sees_dashboard,
    },
    NavItem {
        href: "/cost",
        label: "Cost Center",
        visible: |_| true,
    },
    NavItem {
        href: "/gateways",
        label: "Gateways",
        visible: Role::sees_dashboard,
    },
    NavItem {
        href: "/configs",
        label: "Configurations",
        visible: Role::sees_dashboard,
    },
    NavItem {
        href: "/git",
        label: "Git repositories",
        visible: Role::administers,
    },
    NavItem {
        href: "/onboarding",
        label: "Onboarding",
        visible: Role::sees_dashboard,
    },
    NavItem {
        href: "/escalations",
        label: "Escalations",
        visible: Role::sees_dashboard,
    },
    NavItem {
        href: "/audit",
        label: "Audit log",
        visible: Role::reads_audit,
    },
    NavItem {
        href: "/settings",
        label: "Settings",
        visible: Role::sees_keys,
    },
    NavItem {
        href: "/api-reference",
        label: "API",
        visible: |_| true,
    },
];

/// The Settings sections: `(path, label, visible for)`.
pub const SETTINGS: &[NavItem] = &[
    NavItem {
        href: "/settings/keys",
        label: "Keys",
        visible: Role::sees_keys,
    },
    NavItem {
        href: "/settings/teams",
        label: "Teams and members",
        visible: Role::sees_teams,
    },
    NavItem {
        href: "/settings/users",
        label: "Users",
        visible: Role::administers,
    },
    NavItem {
        href: "/settings/secrets",
        label: "Provider secrets",
        visible: Role::administers,
    },
    NavItem {
        href: "/settings/webhooks",
        label: "Webhooks",
        visible: Role::administers,
    },
    NavItem {
        href: "/settings/templates",
        label: "Onboarding templates",
        visible: Role::administers,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_and_unknown_is_least_privileged() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), role);
        }
        assert_eq!(Role::parse("root"), Role::Viewer);
        assert!(!Role::Viewer.sees_dashboard());
        assert!(!Role::Member.manages_keys());
        assert!(Role::TeamLead.manages_keys());
        assert!(!Role::TeamLead.administers());
    }
}
