//! The permissions between the deployment's parts, read from IAM: a role's
//! policy documents (inline and attached) and the function's resource policy.

use jitr_core::aws::AwsError;

use super::Cloud;

/// A role's policy documents, each with its name.
#[derive(Debug, Clone, Default)]
pub struct RolePolicies {
    pub documents: Vec<(String, serde_json::Value)>,
    /// The ARN of the role's permissions boundary, if it has one: it can
    /// deny what the documents allow, and is not evaluated here.
    pub boundary: Option<String>,
}

/// A role's name in its ARN (`arn:aws:iam::ACCOUNT:role/PATH/NAME`).
pub fn role_name(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

/// A policy document as IAM returns it: URL-encoded JSON (RFC 3986), or
/// plain JSON from some emulators.
pub fn policy_document(text: &str) -> Option<serde_json::Value> {
    serde_json::from_str(text)
        .ok()
        .or_else(|| serde_json::from_str(&percent_decode(text)?).ok())
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// IAM's "no such role/policy" (NoSuchEntity) as `None`.
fn found<T>(answer: Result<T, AwsError>) -> Result<Option<T>, AwsError> {
    match answer {
        Ok(v) => Ok(Some(v)),
        Err(AwsError::NotFound(_)) => Ok(None),
        Err(AwsError::Refused { code, .. }) if code == "NoSuchEntity" => Ok(None),
        Err(e) => Err(e),
    }
}

impl Cloud {
    /// The role's inline and attached policies; `None` if the role does not exist.
    pub fn role_policies(&self, role_arn: &str) -> Result<Option<RolePolicies>, AwsError> {
        let iam = aws_sdk_iam::Client::new(self.config());
        let name = role_name(role_arn);
        let role = self
            .block_on(iam.get_role().role_name(name).send())
            .map_err(|e| self.error(e));
        let Some(role) = found(role)? else {
            return Ok(None);
        };
        let boundary = role
            .role()
            .and_then(|r| r.permissions_boundary())
            .and_then(|b| b.permissions_boundary_arn())
            .map(str::to_string);
        let mut documents = self.inline_policies(&iam, name)?;
        documents.extend(self.managed_policies(&iam, name)?);
        Ok(Some(RolePolicies {
            documents,
            boundary,
        }))
    }

    /// The role's inline policies (ListRolePolicies, GetRolePolicy), by name.
    fn inline_policies(
        &self,
        iam: &aws_sdk_iam::Client,
        name: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, AwsError> {
        let mut documents = Vec::new();
        let inline = self.all_pages(|marker| {
            let iam = iam.clone();
            async move {
                let page = iam
                    .list_role_policies()
                    .role_name(name)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| self.error(e))?;
                let next = page.is_truncated.then(|| page.marker.clone()).flatten();
                Ok((page.policy_names, next))
            }
        })?;
        for policy in inline {
            let out = self
                .block_on(
                    iam.get_role_policy()
                        .role_name(name)
                        .policy_name(&policy)
                        .send(),
                )
                .map_err(|e| self.error(e))?;
            documents.extend(policy_document(&out.policy_document).map(|d| (policy, d)));
        }
        Ok(documents)
    }

    /// The role's managed policies, each its default version's document
    /// (ListAttachedRolePolicies, GetPolicy, GetPolicyVersion), by ARN.
    fn managed_policies(
        &self,
        iam: &aws_sdk_iam::Client,
        name: &str,
    ) -> Result<Vec<(String, serde_json::Value)>, AwsError> {
        let mut documents = Vec::new();
        let attached = self.all_pages(|marker| {
            let iam = iam.clone();
            async move {
                let page = iam
                    .list_attached_role_policies()
                    .role_name(name)
                    .set_marker(marker)
                    .send()
                    .await
                    .map_err(|e| self.error(e))?;
                let next = page.is_truncated.then(|| page.marker.clone()).flatten();
                let arns = page
                    .attached_policies()
                    .iter()
                    .filter_map(|p| p.policy_arn().map(str::to_string))
                    .collect::<Vec<_>>();
                Ok((arns, next))
            }
        })?;
        for arn in attached {
            let policy = self
                .block_on(iam.get_policy().policy_arn(&arn).send())
                .map_err(|e| self.error(e))?;
            let Some(version) = policy.policy().and_then(|p| p.default_version_id()) else {
                continue;
            };
            let out = self
                .block_on(
                    iam.get_policy_version()
                        .policy_arn(&arn)
                        .version_id(version)
                        .send(),
                )
                .map_err(|e| self.error(e))?;
            let document = out
                .policy_version()
                .and_then(|v| v.document())
                .and_then(policy_document);
            documents.extend(document.map(|d| (arn, d)));
        }
        Ok(documents)
    }

    /// The function's resource policy (Lambda GetPolicy); `None` when it has none.
    pub fn function_policy(&self, function: &str) -> Result<Option<serde_json::Value>, AwsError> {
        let lambda = aws_sdk_lambda::Client::new(self.config());
        let answer = self
            .block_on(lambda.get_policy().function_name(function).send())
            .map_err(|e| self.error(e));
        Ok(found(answer)?
            .and_then(|out| out.policy)
            .and_then(|p| policy_document(&p)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_come_plain_or_url_encoded() {
        let plain = r#"{"Version":"2012-10-17","Statement":[]}"#;
        let encoded = "%7B%22Version%22%3A%222012-10-17%22%2C%22Statement%22%3A%5B%5D%7D";
        assert_eq!(policy_document(plain), policy_document(encoded));
        assert!(policy_document(plain).is_some());
        assert!(policy_document("%7B%2").is_none());
        assert!(policy_document("not json").is_none());
    }

    #[test]
    fn role_names_come_from_arns() {
        assert_eq!(
            role_name("arn:aws:iam::1:role/jitr-RuleRole-X"),
            "jitr-RuleRole-X"
        );
        assert_eq!(role_name("arn:aws:iam::1:role/service/a/b"), "b");
    }
}
