package agt.policies.secrets

default_action := "allow"

deny["block-aws-access-keys"] := "An AWS access key id appears in the params." if {
	regex.match(`akia[0-9a-z]{16}`, input.action.params_text)
}

deny["block-private-keys"] := "A PEM private key appears in the params." if {
	contains(input.action.params_text, "-----begin")
	contains(input.action.params_text, "private key-----")
}

approval["secret-tools-need-approval"] := {
	"message": "Secret-store access needs approval.",
	"approvers": ["security"],
} if {
	input.action.tool in {"read_secret", "rotate_secret"}
}
