//! Groups in the database (issue 15), through the admin API and Check: a
//! group's roles are its members' in its organization, belonging to it
//! makes one a member there, a removal takes effect on the very next check,
//! and nobody gets through a group what they could not give directly.

use dispatch_authz::proto::admin::{self as pb, group_member::Member, role_binding::Subject};
use tonic::Code;

use crate::common::{
    admin::{Admin, user_ref},
    *,
};

fn member(user: &str) -> pb::GroupMember {
    pb::GroupMember {
        org: "acme".into(),
        group: "platform".into(),
        member: Some(Member::User(user_ref(user))),
    }
}

async fn add(admin: &mut Admin, user: &str) -> Result<pb::GroupMember, tonic::Status> {
    let r = admin.req(member(user));
    admin
        .client
        .add_group_member(r)
        .await
        .map(|r| r.into_inner())
}

async fn remove(admin: &mut Admin, user: &str) -> Result<pb::GroupMember, tonic::Status> {
    let r = admin.req(member(user));
    admin
        .client
        .remove_group_member(r)
        .await
        .map(|r| r.into_inner())
}

fn platform() -> Subject {
    Subject::Group("acme/platform".into())
}

#[tokio::test]
async fn a_group_gives_its_roles_to_its_members_until_they_leave() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        extra: "groups_header = true",
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    // carol is registered, not a member of acme.
    app.add_user("carol", "carol").await;
    let carol = bearer(&token(&claims("carol")));
    let in_acme = [
        ("authorization", carol.as_str()),
        ("x-dispatch-org", "acme"),
    ];
    let check = async || app.check("/v1/function/f", &in_acme).await;
    assert_eq!(code(&check().await), PERMISSION_DENIED, "not a member yet");

    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: "platform".into(),
    });
    admin.client.create_group(r).await.unwrap();
    admin.bind("acme", "developer", platform()).await.unwrap();
    add(&mut admin, "carol").await.unwrap();

    let r = check().await;
    assert_eq!(code(&r), OK, "{r:?}");
    let set = upstream_headers(&r);
    assert_eq!(header(&set, "x-dispatch-org"), Some("acme"));
    assert_eq!(header(&set, "x-dispatch-roles"), Some("developer"));
    assert_eq!(header(&set, "x-dispatch-groups"), Some("platform"));
    // alice's own binding: no group mattered, no header.
    let alice = bearer(&token(&claims("alice")));
    let r = app
        .check("/v1/function/f", &[("authorization", alice.as_str())])
        .await;
    assert_eq!(header(&upstream_headers(&r), "x-dispatch-groups"), None);

    // The group shows its member and its role.
    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: "platform".into(),
    });
    let group = admin.client.get_group(r).await.unwrap().into_inner();
    assert_eq!(group.members.len(), 1);
    assert_eq!(group.roles[0].name, "developer");

    // Removed: refused on the very next check (the cache is 60 s).
    remove(&mut admin, "carol").await.unwrap();
    assert_eq!(code(&check().await), PERMISSION_DENIED);
    // Back in, then the role unbound from the group: refused at once too.
    add(&mut admin, "carol").await.unwrap();
    assert_eq!(code(&check().await), OK);
    let r = admin.req(Admin::binding("acme", "developer", platform()));
    admin.client.delete_role_binding(r).await.unwrap();
    assert_eq!(code(&check().await), PERMISSION_DENIED);

    // Every write is in the audit log.
    let r = admin.req(pb::ListAuditLogRequest {
        org: "acme".into(),
        limit: 100,
    });
    let audit = admin.client.list_audit_log(r).await.unwrap().into_inner();
    let actions: Vec<&str> = audit.entries.iter().map(|e| e.action.as_str()).collect();
    for action in [
        "group.create",
        "groupbinding.create",
        "group.member.add",
        "group.member.remove",
        "groupbinding.delete",
    ] {
        assert!(actions.contains(&action), "{action} not in {actions:?}");
    }
}

#[tokio::test]
async fn nobody_gets_through_a_group_what_they_could_not_give_directly() {
    let app = spawn_app_with(Options {
        authorization: String::new(),
        ..Default::default()
    })
    .await;
    let (mut admin, _) = app.acme_with_alice().await;
    // mallory may manage acme's IAM, and holds nothing else.
    admin.role("acme", "iam-only", &["iam:*"]).await.unwrap();
    app.add_user("mallory", "mallory").await;
    admin
        .member("acme", &user_ref("mallory"), true)
        .await
        .unwrap();
    admin
        .bind("acme", "iam-only", Subject::User(user_ref("mallory")))
        .await
        .unwrap();
    let r = admin.req(pb::GroupRef {
        org: "acme".into(),
        name: "platform".into(),
    });
    admin.client.create_group(r).await.unwrap();
    admin.bind("acme", "developer", platform()).await.unwrap();
    let mut mallory = Admin::connect(&app, &token(&claims("mallory"))).await;

    // Joining the developers' group: she does not hold function:*.
    let refused = add(&mut mallory, "mallory").await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(refused.message().contains("function:*"), "{refused:?}");
    // Binding globex's or a global role to an acme group.
    admin.role("globex", "boss", &["iam:*"]).await.unwrap();
    let r = admin.req(Admin::binding("globex", "boss", platform()));
    let refused = admin.client.create_role_binding(r).await.unwrap_err();
    assert!(
        refused.message().contains("another organization's"),
        "{refused:?}"
    );
    admin.role("", "everything", &["*:*"]).await.unwrap();
    let r = mallory.req(Admin::binding("", "everything", platform()));
    let refused = mallory.client.create_role_binding(r).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    // And nothing of it took: mallory still cannot call functions.
    let auth = bearer(&token(&claims("mallory")));
    let r = app
        .check("/v1/function/f", &[("authorization", auth.as_str())])
        .await;
    assert_eq!(code(&r), PERMISSION_DENIED);
}
