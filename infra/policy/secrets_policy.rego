# Who may read, write and rotate the platform's secrets (evaluated by authz Evaluate on
# path secrets_policy/allow for every secrets-service call). Input, built by the secrets service:
#   {"action": "secret:read" | "secret:write" | "secret:rotate",
#    "secret": {"name": "<secret name>" | "*"},          # "*" = every secret (ListSecrets, rotation)
#    "subject": {"sub": "...", "tenant": "...", "persona_id": "...", "scopes": ["..."], "auth_method": "jwt" | "api_key"}}
#
# Grants come from the caller's scopes (issued by auth):
#   secrets:admin            every action on every secret, key rotation included
#   secret:read              read / list every secret;  secret:write: write / delete every secret
#   secret:read:<glob>       read the secrets whose name matches <glob> ("*" stops at "/"; "**" does not)
#   secret:write:<glob>      write / delete those secrets
#   secret:rotate            re-encrypt the store under the newest key
# Deny by default.
package secrets_policy

default allow := false

scopes := object.get(object.get(input, "subject", {}), "scopes", [])

name := object.get(object.get(input, "secret", {}), "name", "")

read_or_write := {"secret:read", "secret:write"}

allow if "secrets:admin" in scopes

allow if {
	input.action in read_or_write
	input.action in scopes
}

allow if {
	input.action in read_or_write
	name != "*"
	some scope in scopes
	startswith(scope, concat("", [input.action, ":"]))
	pattern := substring(scope, count(input.action) + 1, -1)
	pattern != ""
	glob.match(pattern, ["/"], name)
}

allow if {
	input.action == "secret:rotate"
	"secret:rotate" in scopes
}

# Why a request was denied, for operators reading decisions (not used for the decision itself).
reason := "allowed" if allow

reason := "policy_violation" if not allow
