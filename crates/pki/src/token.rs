//! Bootstrap tokens (`<id>.<secret>`), as `kubeadm token generate` makes them.

use rand::Rng;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A bootstrap token `"abcdef.0123456789abcdef"` (`[a-z0-9]{6}.[a-z0-9]{16}`), drawn from a
/// CSPRNG (the thread-local ChaCha generator seeded from the OS).
pub fn generate_bootstrap_token() -> String {
    let mut rng = rand::rng();
    let mut pick = |n: usize| -> String {
        (0..n)
            .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
            .collect()
    };
    let id = pick(6);
    let secret = pick(16);
    format!("{id}.{secret}")
}

/// Whether `token` has the bootstrap token form `[a-z0-9]{6}.[a-z0-9]{16}`.
pub fn is_bootstrap_token(token: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    matches!(token.split_once('.'), Some((id, secret)) if ok(id, 6) && ok(secret, 16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_have_the_bootstrap_form_and_differ() {
        let a = generate_bootstrap_token();
        let b = generate_bootstrap_token();
        assert!(is_bootstrap_token(&a), "{a}");
        assert!(is_bootstrap_token(&b), "{b}");
        assert_ne!(a, b);
    }

    #[test]
    fn token_form_is_checked() {
        let cases = [
            ("abcdef.0123456789abcdef", true),
            ("ABCDEF.0123456789abcdef", false),
            ("abcde.0123456789abcdef", false),
            ("abcdef.0123456789abcde", false),
            ("abcdef0123456789abcdef", false),
            ("abcdef.0123456789abcde!", false),
        ];
        for (token, want) in cases {
            assert_eq!(is_bootstrap_token(token), want, "{token}");
        }
    }
}
