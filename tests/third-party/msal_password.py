"""One password-grant sign-in with MSAL for Python, as a whole process: the floor exo's `inline`
method is compared with in `tests/benches/sign_in.rs`. Reads the authority, client id, user
name and password from argv; prints nothing on success (the token is not shown).
"""

import sys

import msal

authority, client_id, username, password = sys.argv[1:5]
# MSAL asks user-realm discovery on the authority's host without its port (see msal_flows.py).
msal.authority.Authority._domains_without_user_realm_discovery.add(
    msal.authority.canonicalize(authority)[1])
app = msal.PublicClientApplication(client_id, authority=authority, instance_discovery=False)
result = app.acquire_token_by_username_password(
    username, password, scopes=["https://outlook.office365.com/.default"])
sys.exit(0 if "access_token" in result else 1)
