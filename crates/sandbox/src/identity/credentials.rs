//! Checking a user's username and password (ROPC and the sign-in page share this).

use crate::directory::{TenantSegment, UserRef};
use crate::identity::errors::AadError;
use crate::state::Core;

/// Finds the account `username` may sign in as under `segment` (AADSTS50034 otherwise).
pub(crate) fn lookup_user(
    core: &Core,
    segment: TenantSegment,
    username: &str,
) -> Result<UserRef, AadError> {
    let found = core.directory.user_by_upn(username);
    let directory = match segment {
        TenantSegment::Tenant(t) => core.directory.tenants[t].initial_domain().to_owned(),
        _ => username
            .rsplit_once('@')
            .map_or_else(String::new, |(_, d)| d.to_owned()),
    };
    match (found, segment) {
        (Some(user), TenantSegment::Tenant(t)) if user.tenant == t => Ok(user),
        (Some(user), TenantSegment::Common | TenantSegment::Organizations) => Ok(user),
        _ => Err(AadError::new(
            "invalid_grant",
            50034,
            format!(
                "The user account {{EUII Hidden}} does not exist in the {directory} directory. To sign into this application, the account must be added to the directory."
            ),
        )),
    }
}

/// Checks the password and the account state, in the service's order: lockout, password,
/// disabled, expired.
pub(crate) fn check_password(core: &Core, user: UserRef, password: &str) -> Result<(), AadError> {
    let account = core.directory.user(user);
    if account.locked {
        return Err(AadError::new(
            "invalid_grant",
            50053,
            "The account is locked, you've tried to sign in too many times with an incorrect user ID or password.",
        ));
    }
    // No trimming: passwords with leading/trailing whitespace fail ROPC for real, too.
    if !crate::state::constant_time_eq(account.password.as_bytes(), password.as_bytes()) {
        return Err(AadError::new(
            "invalid_grant",
            50126,
            "Error validating credentials due to invalid username or password.",
        ));
    }
    if account.disabled {
        return Err(AadError::new(
            "invalid_grant",
            50057,
            "The user account is disabled.",
        ));
    }
    if account.password_expired {
        return Err(
            AadError::new("invalid_grant", 50055, "The password is expired.")
                .suberror("user_password_expired"),
        );
    }
    Ok(())
}
