package secrets_policy_test

import data.secrets_policy

req(action, name, scopes) := {"action": action, "secret": {"name": name}, "subject": {"sub": "u1", "tenant": "acme", "persona_id": "", "scopes": scopes, "auth_method": "jwt"}}

test_admin_may_do_everything if {
	secrets_policy.allow with input as req("secret:read", "openai", ["secrets:admin"])
	secrets_policy.allow with input as req("secret:write", "openai", ["secrets:admin"])
	secrets_policy.allow with input as req("secret:rotate", "*", ["secrets:admin"])
	secrets_policy.allow with input as req("secret:read", "*", ["secrets:admin"])
}

test_unscoped_read_and_write if {
	secrets_policy.allow with input as req("secret:read", "openai", ["secret:read"])
	secrets_policy.allow with input as req("secret:read", "*", ["secret:read"])
	not secrets_policy.allow with input as req("secret:write", "openai", ["secret:read"])
	secrets_policy.allow with input as req("secret:write", "openai", ["secret:write"])
	not secrets_policy.allow with input as req("secret:read", "openai", ["secret:write"])
}

test_name_scoped_grants if {
	secrets_policy.allow with input as req("secret:read", "openai", ["secret:read:openai"])
	secrets_policy.allow with input as req("secret:read", "openai-prod", ["secret:read:openai*"])
	not secrets_policy.allow with input as req("secret:read", "anthropic", ["secret:read:openai*"])
	secrets_policy.allow with input as req("secret:read", "llm/openai", ["secret:read:llm/*"])
	not secrets_policy.allow with input as req("secret:read", "llm/team/openai", ["secret:read:llm/*"])
	secrets_policy.allow with input as req("secret:read", "llm/team/openai", ["secret:read:llm/**"])
	secrets_policy.allow with input as req("secret:write", "llm/openai", ["secret:write:llm/*"])
	not secrets_policy.allow with input as req("secret:write", "llm/openai", ["secret:read:llm/*"])
}

test_name_scoped_grants_cannot_list_or_rotate if {
	not secrets_policy.allow with input as req("secret:read", "*", ["secret:read:openai*"])
	not secrets_policy.allow with input as req("secret:rotate", "*", ["secret:read", "secret:write"])
	secrets_policy.allow with input as req("secret:rotate", "*", ["secret:rotate"])
}

test_empty_pattern_grants_nothing if {
	not secrets_policy.allow with input as req("secret:read", "openai", ["secret:read:"])
}

test_denied_by_default if {
	not secrets_policy.allow with input as req("secret:read", "openai", [])
	not secrets_policy.allow with input as {}
	not secrets_policy.allow with input as {"action": "secret:read", "secret": {"name": "openai"}}
	not secrets_policy.allow with input as req("secret:delete", "openai", ["secret:read", "secret:write"])
	not secrets_policy.allow with input as req("secret:read", "openai", ["Secret:Read", "secrets:admin "])
}

test_reason if {
	secrets_policy.reason == "allowed" with input as req("secret:read", "openai", ["secret:read"])
	secrets_policy.reason == "policy_violation" with input as req("secret:read", "openai", [])
}
