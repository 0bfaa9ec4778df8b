package tool_policy_test

import data.tool_policy

test_web_search_allowed_for_everyone if {
	tool_policy.allow with input as {"tool": "web_search", "tenant": "acme"}
	tool_policy.allow with input as {"tool": "web_search", "tenant": "trusted"}
	tool_policy.allow with input as {"tool": "web_search", "tenant": ""}
}

test_code_execution_allowed_for_trusted if {
	tool_policy.allow with input as {"tool": "code_execution", "tenant": "trusted"}
}

test_code_execution_denied_for_acme if {
	not tool_policy.allow with input as {"tool": "code_execution", "tenant": "acme"}
}

test_code_execution_needs_exact_tenant if {
	not tool_policy.allow with input as {"tool": "code_execution", "tenant": "Trusted"}
	not tool_policy.allow with input as {"tool": "code_execution", "tenant": "trusted "}
	not tool_policy.allow with input as {"tool": "code_execution", "principal": {"tenant": "trusted"}}
}

test_unknown_tool_denied if {
	not tool_policy.allow with input as {"tool": "file_delete", "tenant": "trusted"}
	not tool_policy.allow with input as {"tool": "WEB_SEARCH", "tenant": "trusted"}
}

test_missing_input_denied if {
	not tool_policy.allow with input as {}
	not tool_policy.allow with input as {"tenant": "trusted"}
}

test_allow_is_always_boolean if {
	tool_policy.allow == false with input as {"tool": "nope"}
}

test_reason if {
	tool_policy.reason == "policy_violation" with input as {"tool": "code_execution", "tenant": "acme"}
	tool_policy.reason == "allowed" with input as {"tool": "web_search"}
}
