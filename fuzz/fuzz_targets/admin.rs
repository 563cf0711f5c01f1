//! The admin API's request conversion (`server::admin::convert`): every
//! request message of any content parsed into domain values, as each RPC
//! does before it reaches `iam`. Never a panic; a refusal is always
//! INVALID_ARGUMENT naming a field.
#![no_main]

use arbitrary::Arbitrary;
use dispatch_authz::{
    policy::rbac::Role,
    proto::admin as pb,
    server::admin::convert::{
        Bind, account_fields, account_ref, group_fields, group_member, group_ref, link_fields,
        role_key,
    },
    store::NewUser,
};
use libfuzzer_sys::fuzz_target;
use tonic::Code;

#[derive(Arbitrary, Debug)]
struct Input {
    a: String,
    b: String,
    c: String,
    d: String,
    e: String,
    permissions: Vec<String>,
    which: u8,
}

fn refused<T>(result: Result<T, tonic::Status>) {
    if let Err(status) = result {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(!status.message().is_empty());
    }
}

fuzz_target!(|input: Input| {
    let Input {
        a,
        b,
        c,
        d,
        e,
        permissions,
        which,
    } = input;
    refused(role_key(&a, &b));
    refused(account_fields(&a, &b));
    refused(account_ref(&c));
    refused(group_ref(&c));
    refused(group_fields(&pb::GroupRef {
        org: a.clone(),
        name: b.clone(),
    }));
    refused(link_fields(&pb::LinkGroupRequest {
        org: a.clone(),
        name: b.clone(),
        link: c.clone(),
    }));
    use pb::group_member::Member;
    let member = match which % 3 {
        0 => Some(Member::User(d.clone())),
        1 => Some(Member::ServiceAccount(d.clone())),
        _ => None,
    };
    refused(group_member(&pb::GroupMember {
        org: a.clone(),
        group: b.clone(),
        member,
    }));
    use pb::role_binding::Subject;
    let subject = match which % 4 {
        0 => Some(Subject::User(d.clone())),
        1 => Some(Subject::ServiceAccount(d.clone())),
        2 => Some(Subject::Group(d.clone())),
        _ => None,
    };
    let binding = pb::RoleBinding {
        role: (which & 4 == 0).then(|| pb::RoleRef {
            org: a.clone(),
            name: b.clone(),
        }),
        subject,
    };
    refused(Bind::try_from(&binding).map(|_| ()));
    let user = pb::CreateUserRequest {
        issuer: a.clone(),
        subject: b.clone(),
        login: c.clone(),
        email: d.clone(),
        display_name: e.clone(),
    };
    refused(NewUser::try_from(&user).map(|_| ()));
    let role = pb::Role {
        org: a,
        name: b,
        permissions,
    };
    refused(Role::try_from(&role).map(|_| ()));
});
