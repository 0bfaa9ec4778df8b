# Which agent tools a principal may use. Input (built by authz CheckTool):
#   {"tool": "...", "tenant": "...", "user": "...", "persona_id": "...",
#    "principal": {"sub": "...", "tenant": "...", "persona_id": "..."}}
# Deny by default: a tool is usable only when a rule below grants it.
package tool_policy

default allow := false

# Web search is open to every tenant.
allow if input.tool == "web_search"

# Running code is limited to tenants that are trusted to run it.
allow if {
	input.tool == "code_execution"
	input.tenant in code_execution_tenants
}

code_execution_tenants := {"trusted"}

# Why a request was denied, for operators reading decisions (not used for the decision itself).
reason := "allowed" if allow

reason := "policy_violation" if not allow
