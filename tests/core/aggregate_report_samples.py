"""DMARC aggregate and TLS reports shaped like the ones real receivers send, and hostile ones.

Google sends one zipped XML file (`google.com!<domain>!<begin>!<end>.zip`, application/zip) in a
multipart/mixed message; Microsoft (Outlook.com and Exchange Online) gzipped XML with a version
element and XML Schema namespaces declared on <feedback>; Yahoo gzipped XML without a version.
The TLS report is RFC 8460 §4.4's example, gzipped as application/tlsrpt+gzip in a
multipart/report; report-type=tlsrpt message (RFC 8460 §5.3).
"""

from __future__ import annotations

import base64
import gzip
import io
import zipfile
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

BEGIN = 1_714_521_600  # 2024-05-01T00:00:00Z
END = BEGIN + 86_399


def report_message(
    *,
    sender: str,
    to: str,
    subject: str,
    attachment: bytes,
    maintype: str,
    subtype: str,
    filename: str,
    text: str = "This is an aggregate report.",
    headers: dict[str, str] | None = None,
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(datetime(2024, 5, 2, 1, 2, 3, tzinfo=UTC))
    message["Message-ID"] = f"<{filename}@reports.test>"
    for name, value in (headers or {}).items():
        message[name] = value
    message.set_content(text)
    message.add_attachment(attachment, maintype=maintype, subtype=subtype, filename=filename)
    return message.as_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def zip_archive(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


def google_xml(domain: str, report_id: str = "13790208385467380422") -> bytes:
    return f"""<?xml version="1.0" encoding="UTF-8" ?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name>
    <email>noreply-dmarc-support@google.com</email>
    <extra_contact_info>https://support.google.com/a/answer/2466580</extra_contact_info>
    <report_id>{report_id}</report_id>
    <date_range>
      <begin>{BEGIN}</begin>
      <end>{END}</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>{domain}</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>quarantine</p>
    <sp>quarantine</sp>
    <pct>100</pct>
    <np>quarantine</np>
  </policy_published>
  <record>
    <row>
      <source_ip>203.0.113.25</source_ip>
      <count>12</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>pass</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>{domain}</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>{domain}</domain>
        <result>pass</result>
        <selector>mm2024a</selector>
      </dkim>
      <spf>
        <domain>mail.{domain}</domain>
        <result>pass</result>
      </spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>198.51.100.7</source_ip>
      <count>3</count>
      <policy_evaluated>
        <disposition>quarantine</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>{domain}</header_from>
    </identifiers>
    <auth_results>
      <spf>
        <domain>spammer.example</domain>
        <result>softfail</result>
      </spf>
    </auth_results>
  </record>
</feedback>
""".encode()


def google_report(to: str, domain: str, report_id: str = "13790208385467380422") -> bytes:
    filename = f"google.com!{domain}!{BEGIN}!{END}.zip"
    return report_message(
        sender="noreply-dmarc-support@google.com",
        to=to,
        subject=f"Report domain: {domain} Submitter: google.com Report-ID: {report_id}",
        attachment=zip_archive(
            filename.removesuffix(".zip") + ".xml", google_xml(domain, report_id)
        ),
        maintype="application",
        subtype="zip",
        filename=filename,
    )


def microsoft_xml(domain: str) -> bytes:
    return f"""<?xml version="1.0"?>
<feedback xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
  <version>1.0</version>
  <report_metadata>
    <org_name>Enterprise Outlook</org_name>
    <email>dmarcreport@microsoft.com</email>
    <report_id>2f3b7d1c9a4e4b0c8d7e6f5a4b3c2d1e</report_id>
    <date_range>
      <begin>{BEGIN}</begin>
      <end>{BEGIN + 86_400}</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>{domain}</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>quarantine</p>
    <sp>quarantine</sp>
    <pct>100</pct>
    <fo>0</fo>
  </policy_published>
  <record>
    <row>
      <source_ip>203.0.113.25</source_ip>
      <count>5</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>pass</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_to>contoso.com</envelope_to>
      <envelope_from>mail.{domain}</envelope_from>
      <header_from>{domain}</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>{domain}</domain>
        <selector>mm2024a</selector>
        <result>pass</result>
      </dkim>
      <spf>
        <domain>mail.{domain}</domain>
        <scope>mfrom</scope>
        <result>pass</result>
      </spf>
    </auth_results>
  </record>
  <record>
    <row>
      <source_ip>2001:0db8:0000:0000:0000:0000:0000:0042</source_ip>
      <count>2</count>
      <policy_evaluated>
        <disposition>none</disposition>
        <dkim>pass</dkim>
        <spf>fail</spf>
        <reason>
          <type>forwarded</type>
          <comment></comment>
        </reason>
      </policy_evaluated>
    </row>
    <identifiers>
      <envelope_to>contoso.com</envelope_to>
      <envelope_from>lists.example</envelope_from>
      <header_from>{domain}</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>lists.example</domain>
        <selector>s1</selector>
        <result>pass</result>
      </dkim>
      <dkim>
        <domain>{domain}</domain>
        <selector>mm2024a</selector>
        <result>pass</result>
      </dkim>
      <spf>
        <domain>lists.example</domain>
        <scope>mfrom</scope>
        <result>pass</result>
      </spf>
    </auth_results>
  </record>
</feedback>
""".encode()


def microsoft_report(to: str, domain: str) -> bytes:
    filename = f"enterprise.protection.outlook.com!{domain}!{BEGIN}!{BEGIN + 86_400}.xml.gz"
    return report_message(
        sender="DMARC Aggregate Report <dmarcreport@microsoft.com>",
        to=to,
        subject=f"Report Domain: {domain} Submitter: enterprise.protection.outlook.com "
        "Report-ID: 2f3b7d1c9a4e4b0c8d7e6f5a4b3c2d1e",
        attachment=gzip.compress(microsoft_xml(domain)),
        maintype="application",
        subtype="gzip",
        filename=filename,
        text="This is a DMARC aggregate report from Microsoft Corporation.",
    )


def yahoo_xml(domain: str) -> bytes:
    return f"""<?xml version="1.0"?>
<feedback>
  <report_metadata>
    <org_name>Yahoo</org_name>
    <email>dmarchelp@yahooinc.com</email>
    <report_id>1714608000.598641</report_id>
    <date_range>
      <begin>{BEGIN}</begin>
      <end>{END}</end>
    </date_range>
  </report_metadata>
  <policy_published>
    <domain>{domain}</domain>
    <adkim>r</adkim>
    <aspf>r</aspf>
    <p>quarantine</p>
    <pct>100</pct>
  </policy_published>
  <record>
    <row>
      <source_ip>192.0.2.99</source_ip>
      <count>1</count>
      <policy_evaluated>
        <disposition>quarantine</disposition>
        <dkim>fail</dkim>
        <spf>fail</spf>
      </policy_evaluated>
    </row>
    <identifiers>
      <header_from>{domain}</header_from>
    </identifiers>
    <auth_results>
      <dkim>
        <domain>{domain}</domain>
        <result>permerror</result>
      </dkim>
      <spf>
        <domain>{domain}</domain>
        <result>fail</result>
      </spf>
    </auth_results>
  </record>
</feedback>
""".encode()


def yahoo_report(to: str, domain: str) -> bytes:
    return report_message(
        sender="Yahoo DMARC Report <noreply@dmarc.yahoo.com>",
        to=to,
        subject=f"Report Domain: {domain} Submitter: Yahoo Report-ID: <1714608000.598641>",
        attachment=gzip.compress(yahoo_xml(domain)),
        maintype="application",
        subtype="gzip",
        filename=f"yahoo.com!{domain}!{BEGIN}!{END}.xml.gz",
    )


def tls_json(domain: str) -> bytes:
    """RFC 8460 §4.4's example report, about `domain`."""
    return f"""{{
  "organization-name": "Company-X",
  "date-range": {{
    "start-datetime": "2016-04-01T00:00:00Z",
    "end-datetime": "2016-04-01T23:59:59Z"
  }},
  "contact-info": "sts-reporting@company-x.example",
  "report-id": "5065427c-23d3-47ca-b6e0-946ea0e8c4be",
  "policies": [{{
    "policy": {{
      "policy-type": "sts",
      "policy-string": ["version: STSv1","mode: testing",
            "mx: *.mail.{domain}","max_age: 86400"],
      "policy-domain": "{domain}",
      "mx-host": ["*.mail.{domain}"]
    }},
    "summary": {{
      "total-successful-session-count": 5326,
      "total-failure-session-count": 303
    }},
    "failure-details": [{{
      "result-type": "certificate-expired",
      "sending-mta-ip": "2001:db8:abcd:0012::1",
      "receiving-mx-hostname": "mx1.mail.{domain}",
      "failed-session-count": 100
    }}, {{
      "result-type": "starttls-not-supported",
      "sending-mta-ip": "2001:db8:abcd:0013::1",
      "receiving-mx-hostname": "mx2.mail.{domain}",
      "receiving-ip": "203.0.113.56",
      "failed-session-count": 200,
      "additional-information": "https://reports.company-x.example/report_info?id=5065427c-23d3#StarttlsNotSupported"
    }}, {{
      "result-type": "validation-failure",
      "sending-mta-ip": "198.51.100.62",
      "receiving-ip": "203.0.113.58",
      "receiving-mx-hostname": "mx-backup.mail.{domain}",
      "failed-session-count": 3,
      "failure-reason-code": "X509_V_ERR_PROXY_PATH_LENGTH_EXCEEDED"
    }}]
  }}]
}}
""".encode()


def tls_report(to: str, domain: str) -> bytes:
    """RFC 8460 §5.3: multipart/report; report-type=tlsrpt, the report as application/tlsrpt+gzip."""
    filename = f"company-x.example!{domain}!1459468800!1459555199!001.json.gz"
    boundary = "----=_TLSRPT_5065427c"
    body = base64.encodebytes(gzip.compress(tls_json(domain))).decode()
    text = f"""From: tls-reporting@company-x.example
To: {to}
Subject: Report Domain: {domain} Submitter: company-x.example Report-ID: <5065427c-23d3-47ca-b6e0-946ea0e8c4be>
Date: Fri, 01 Apr 2016 23:59:59 +0000
Message-ID: <5065427c@company-x.example>
TLS-Report-Domain: {domain}
TLS-Report-Submitter: company-x.example
MIME-Version: 1.0
Content-Type: multipart/report; report-type="tlsrpt"; boundary="{boundary}"

--{boundary}
Content-Type: text/plain; charset="us-ascii"

This is an aggregate TLS report from company-x.example

--{boundary}
Content-Type: application/tlsrpt+gzip
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename="{filename}"

{body}
--{boundary}--
"""
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode()


# --- hostile reports -----------------------------------------------------------------------------


def gzip_report(to: str, xml: bytes, name: str = "hostile.example!x!1!2.xml.gz") -> bytes:
    return report_message(
        sender="reports@hostile.example",
        to=to,
        subject="Report",
        attachment=gzip.compress(xml, compresslevel=9),
        maintype="application",
        subtype="gzip",
        filename=name,
    )


def plain_report(to: str, xml: bytes) -> bytes:
    return report_message(
        sender="reports@hostile.example",
        to=to,
        subject="Report",
        attachment=xml,
        maintype="text",
        subtype="xml",
        filename="hostile.example!x!1!2.xml",
    )


def billion_laughs() -> bytes:
    lol = "".join(
        f'  <!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10}">\n' for i in range(1, 10)
    )
    return (
        '<?xml version="1.0"?>\n<!DOCTYPE feedback [\n  <!ENTITY lol0 "lol">\n'
        f"{lol}]>\n<feedback><report_metadata><org_name>&lol9;</org_name></report_metadata>"
        "</feedback>\n"
    ).encode()


def external_entity() -> bytes:
    return (
        b'<?xml version="1.0"?>\n<!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
        b"<feedback><report_metadata><org_name>&xxe;</org_name><report_id>1</report_id>"
        b"</report_metadata><policy_published><domain>acme.test</domain></policy_published>"
        b"</feedback>\n"
    )


def gzip_bomb(size: int = 100 * 1024 * 1024) -> bytes:
    """A gzip member that inflates to `size` bytes of XML whitespace inside <feedback>, built
    without ever holding the inflated text."""
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as out:
        out.write(b'<?xml version="1.0"?>\n<feedback>')
        block = b" " * (1024 * 1024)
        for _ in range(size // len(block)):
            out.write(block)
        out.write(b"</feedback>\n")
    return buffer.getvalue()


def zip_bomb(size: int = 100 * 1024 * 1024, *, lie: bool = False) -> bytes:
    """One deflated member of `size` zero bytes; with `lie`, its header declares 1 KiB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo("report.xml")
        info.compress_type = zipfile.ZIP_DEFLATED
        with archive.open(info, "w", force_zip64=True) as member:
            block = b"\0" * (1024 * 1024)
            for _ in range(size // len(block)):
                member.write(block)
    data = buffer.getvalue()
    if lie:
        data = _declare_small(data)
    return data


def _declare_small(data: bytes) -> bytes:
    """Rewrite the uncompressed sizes a zip declares (central directory and local header) to
    1024, as a zip bomb that hopes to pass a size check would."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    [info] = archive.infolist()
    out = bytearray(data)
    # Central directory entry: signature PK\1\2, uncompressed size at offset 24 (or zip64 extra).
    central = data.rfind(b"PK\x01\x02")
    extra_len = int.from_bytes(data[central + 30 : central + 32], "little")
    name_len = int.from_bytes(data[central + 28 : central + 30], "little")
    out[central + 24 : central + 28] = (1024).to_bytes(4, "little")
    extra_start = central + 46 + name_len
    extra = data[extra_start : extra_start + extra_len]
    position = 0
    while position + 4 <= len(extra):
        tag = int.from_bytes(extra[position : position + 2], "little")
        length = int.from_bytes(extra[position + 2 : position + 4], "little")
        if tag == 1:  # zip64: uncompressed size first
            start = extra_start + position + 4
            out[start : start + 8] = (1024).to_bytes(8, "little")
        position += 4 + length
    assert info.file_size > 1024
    return bytes(out)


def zip_report(to: str, archive: bytes) -> bytes:
    return report_message(
        sender="reports@hostile.example",
        to=to,
        subject="Report",
        attachment=archive,
        maintype="application",
        subtype="zip",
        filename="hostile.example!x!1!2.zip",
    )


def many_records_xml(domain: str, records: int) -> bytes:
    """A well-formed report with `records` records (for the record cap and the bench)."""
    head = (
        '<?xml version="1.0"?><feedback><report_metadata><org_name>bulk.example</org_name>'
        f"<report_id>bulk-{records}</report_id><date_range><begin>{BEGIN}</begin>"
        f"<end>{END}</end></date_range></report_metadata><policy_published><domain>{domain}"
        "</domain><p>none</p></policy_published>"
    )
    record = (
        "<record><row><source_ip>10.{a}.{b}.{c}</source_ip><count>1</count><policy_evaluated>"
        "<disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated>"
        "</row><identifiers><header_from>{domain}</header_from></identifiers><auth_results>"
        "<dkim><domain>{domain}</domain><result>pass</result></dkim><spf><domain>{domain}"
        "</domain><result>fail</result></spf></auth_results></record>"
    )
    body = "".join(
        record.format(a=i // 65536 % 256, b=i // 256 % 256, c=i % 256, domain=domain)
        for i in range(records)
    )
    return (head + body + "</feedback>").encode()
