//! Reading certificate requests as upstream's `ParseCSR` does: the subject and requested
//! names that the CSR controllers and admission plugins judge. The signature is not checked
//! here; signing checks it.

use x509_parser::certification_request::X509CertificationRequest;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::FromDer;

/// The parts of an x509 certificate request the controllers judge. As Go's `pkix.Name`, the
/// common name is the last CN attribute and organizations are all O attributes in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CsrSubject {
    pub common_name: String,
    pub organizations: Vec<String>,
    pub dns_names: Vec<String>,
    pub email_addresses: Vec<String>,
    pub ip_addresses: Vec<String>,
    pub uris: Vec<String>,
}

/// Reads a PEM `CERTIFICATE REQUEST` (upstream's `ParseCSR`; the signature is the API
/// server's to check on create).
pub fn parse_csr(pem: &[u8]) -> Result<CsrSubject, String> {
    const WRONG_TYPE: &str = "PEM block type must be CERTIFICATE REQUEST";
    let (_, block) = x509_parser::pem::parse_x509_pem(pem).map_err(|_| WRONG_TYPE.to_string())?;
    if block.label != "CERTIFICATE REQUEST" {
        return Err(WRONG_TYPE.into());
    }
    let (_, req) = X509CertificationRequest::from_der(&block.contents)
        .map_err(|e| format!("x509: malformed certificate request: {e}"))?;
    let subject = &req.certification_request_info.subject;
    let text = |v: Result<&str, _>| {
        v.map(str::to_string)
            .map_err(|_| "x509: invalid subject attribute".to_string())
    };
    let common_name = match subject.iter_common_name().last() {
        Some(cn) => text(cn.as_str())?,
        None => String::new(),
    };
    let organizations = subject
        .iter_organization()
        .map(|o| text(o.as_str()))
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = CsrSubject {
        common_name,
        organizations,
        ..Default::default()
    };
    for ext in req.requested_extensions().into_iter().flatten() {
        if let ParsedExtension::SubjectAlternativeName(san) = ext {
            for name in &san.general_names {
                match name {
                    GeneralName::DNSName(d) => out.dns_names.push(d.to_string()),
                    GeneralName::RFC822Name(e) => out.email_addresses.push(e.to_string()),
                    GeneralName::URI(u) => out.uris.push(u.to_string()),
                    GeneralName::IPAddress(ip) => out.ip_addresses.push(ip_text(ip)),
                    _ => {}
                }
            }
        }
    }
    Ok(out)
}

fn ip_text(bytes: &[u8]) -> String {
    match bytes.len() {
        4 => {
            let mut a = [0u8; 4];
            a.copy_from_slice(bytes);
            std::net::Ipv4Addr::from(a).to_string()
        }
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(bytes);
            std::net::Ipv6Addr::from(a).to_string()
        }
        _ => format!("{bytes:02x?}"),
    }
}
