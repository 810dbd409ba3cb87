"""Delivery status notifications and complaint reports shaped like the ones real servers send.

Each builder takes the VERP address the report is sent to, the recipient it is about and the
Message-ID of the original, so the same samples serve the parser tests and the MX tests.
"""

from __future__ import annotations


def crlf(text: str) -> bytes:
    return text.replace("\r\n", "\n").replace("\n", "\r\n").encode("utf-8")


def postfix_bounce(verp: str, recipient: str, message_id: str) -> bytes:
    """Postfix's bounce(8) after a 550 at RCPT time, returning the headers only."""
    return crlf(f"""Return-Path: <>
Received: by mx.remote.test (Postfix)
	id 3F2B41A0C2; Thu,  2 May 2024 10:31:02 +0000 (UTC)
Date: Thu,  2 May 2024 10:31:02 +0000 (UTC)
From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {verp}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="3F2B41A0C2.1714645862/mx.remote.test"
Content-Transfer-Encoding: 8bit
Message-Id: <20240502103102.3F2B41A0C2@mx.remote.test>

This is a MIME-encapsulated message.

--3F2B41A0C2.1714645862/mx.remote.test
Content-Description: Notification
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

This is the mail system at host mx.remote.test.

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients. It's attached below.

For further assistance, please send mail to postmaster.

                   The mail system

<{recipient}>: host mail.remote.test[192.0.2.25] said: 550 5.1.1
    <{recipient}>: Recipient address rejected: User unknown in local
    recipient table (in reply to RCPT TO command)

--3F2B41A0C2.1714645862/mx.remote.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.test
X-Postfix-Queue-ID: 3F2B41A0C2
X-Postfix-Sender: rfc822; {verp}
Arrival-Date: Thu,  2 May 2024 10:31:01 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Original-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; mail.remote.test
Diagnostic-Code: smtp; 550 5.1.1 <{recipient}>: Recipient address rejected:
    User unknown in local recipient table

--3F2B41A0C2.1714645862/mx.remote.test
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers
Content-Transfer-Encoding: 8bit

Return-Path: <{verp}>
Received: from mx.mailmark.test (mx.mailmark.test [192.0.2.10])
	by mx.remote.test (Postfix) with ESMTPS id 3F2B41A0C2
	for <{recipient}>; Thu,  2 May 2024 10:31:01 +0000 (UTC)
From: Sales <sales@acme.test>
To: {recipient}
Subject: Quarterly numbers
Message-ID: <{message_id}>
Date: Thu, 02 May 2024 10:31:00 +0000

--3F2B41A0C2.1714645862/mx.remote.test--
""")


def postfix_delay(verp: str, recipient: str, message_id: str) -> bytes:
    """Postfix's delay warning (delay_warning_time): still being retried."""
    return crlf(f"""From: MAILER-DAEMON@mx.remote.test (Mail Delivery System)
Subject: Delayed Mail (still being retried)
To: {verp}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
	boundary="8C1A21B9.1714650000/mx.remote.test"

--8C1A21B9.1714650000/mx.remote.test
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

This is the mail system at host mx.remote.test.

####################################################################
# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #
####################################################################

<{recipient}>: connect to mail.remote.test[192.0.2.25]:25: Connection timed out

--8C1A21B9.1714650000/mx.remote.test
Content-Description: Delivery report
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.remote.test
X-Postfix-Queue-ID: 8C1A21B9
Arrival-Date: Thu,  2 May 2024 10:31:01 +0000 (UTC)

Final-Recipient: rfc822; {recipient}
Action: delayed
Status: 4.4.1
Diagnostic-Code: X-Postfix; connect to mail.remote.test[192.0.2.25]:25:
    Connection timed out
Will-Retry-Until: Tue,  7 May 2024 10:31:01 +0000 (UTC)

--8C1A21B9.1714650000/mx.remote.test
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Sales <sales@acme.test>
To: {recipient}
Message-ID: <{message_id}>

--8C1A21B9.1714650000/mx.remote.test--
""")


def exim_bounce(verp: str, recipients: tuple[str, str], message_id: str) -> bytes:
    """Exim's bounce: two failed recipients, Action before Final-Recipient, full message returned."""
    first, second = recipients
    return crlf(f"""Return-path: <>
From: Mail Delivery System <Mailer-Daemon@mail.exim.test>
To: {verp}
References: <{message_id}>
Content-Type: multipart/report; report-type=delivery-status; boundary=1714645862-eximdsn-1804289383
MIME-Version: 1.0
Subject: Mail delivery failed: returning message to sender
Message-Id: <E1s2Tqg-0001aB-4F@mail.exim.test>
Date: Thu, 02 May 2024 10:31:02 +0000
Auto-Submitted: auto-replied

--1714645862-eximdsn-1804289383
Content-type: text/plain; charset=us-ascii

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  {first}
    host mx.exim.test [192.0.2.5]
    SMTP error from remote mail server after RCPT TO:<{first}>:
    550 No such user here
  {second}
    host mx.exim.test [192.0.2.5]
    SMTP error from remote mail server after end of data:
    552 5.2.2 Mailbox full

--1714645862-eximdsn-1804289383
Content-type: message/delivery-status

Reporting-MTA: dns; mail.exim.test

Action: failed
Final-Recipient: rfc822;{first}
Status: 5.0.0
Remote-MTA: dns; mx.exim.test
Diagnostic-Code: smtp; 550 No such user here

Action: failed
Final-Recipient: rfc822;{second}
Status: 5.2.2
Remote-MTA: dns; mx.exim.test
Diagnostic-Code: smtp; 552 5.2.2 Mailbox full

--1714645862-eximdsn-1804289383
Content-type: message/rfc822

Return-path: <{verp}>
From: Sales <sales@acme.test>
To: {first}, {second}
Subject: Team update
Message-ID: <{message_id}>
Date: Thu, 02 May 2024 10:31:00 +0000

The whole original body, returned by Exim.
.. even a line that starts with a dot

--1714645862-eximdsn-1804289383--
""")


def gmail_bounce(verp: str, recipient: str, message_id: str) -> bytes:
    """Gmail's "Delivery Status Notification (Failure)": the people part is a multipart/related of
    text, HTML and an icon; the original is named by X-Original-Message-ID, with no headers part."""
    return crlf(f"""Delivered-To: {verp}
Return-Path: <>
From: Mail Delivery Subsystem <mailer-daemon@googlemail.test>
To: {verp}
Auto-Submitted: auto-replied
Subject: Delivery Status Notification (Failure)
References: <{message_id}>
In-Reply-To: <{message_id}>
X-Failed-Recipients: {recipient}
Message-ID: <66336b05.050a0220.7c.0001.GMR@mx.google.test>
Date: Thu, 02 May 2024 03:31:02 -0700 (PDT)
MIME-Version: 1.0
Content-Type: multipart/report; boundary="000000000000d0b3a80617a1e2b0"; report-type=delivery-status

--000000000000d0b3a80617a1e2b0
Content-Type: multipart/related; boundary="000000000000d0c4890617a1e2b7"

--000000000000d0c4890617a1e2b7
Content-Type: multipart/alternative; boundary="000000000000d0c4930617a1e2b8"

--000000000000d0c4930617a1e2b8
Content-Type: text/plain; charset="UTF-8"


** Address not found **

Your message wasn't delivered to {recipient} because the address couldn't be found, or is unable to receive mail.

--000000000000d0c4930617a1e2b8
Content-Type: text/html; charset="UTF-8"

<html><body><p>Address not found</p></body></html>

--000000000000d0c4930617a1e2b8--
--000000000000d0c4890617a1e2b7
Content-Type: image/png; name="icon.png"
Content-Disposition: attachment; filename="icon.png"
Content-Transfer-Encoding: base64
Content-ID: <icon.png>

iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==
--000000000000d0c4890617a1e2b7--
--000000000000d0b3a80617a1e2b0
Content-Type: message/delivery-status

Reporting-MTA: dns; googlemail.test
Received-From-MTA: dns; sales@acme.test
Arrival-Date: Thu, 02 May 2024 03:31:01 -0700 (PDT)
X-Original-Message-ID: <{message_id}>

Final-Recipient: rfc822; {recipient}
Action: failed
Status: 5.1.1
Remote-MTA: dns; gmail-smtp-in.l.google.test. (192.0.2.27, the server for the domain
 gmail.test.)
Diagnostic-Code: smtp; 550-5.1.1 The email account that you tried to reach does not exist. Please try
 550-5.1.1 double-checking the recipient's email address for typos or
 550 5.1.1 unnecessary spaces. https://support.google.test/mail/?p=NoSuchUser
Last-Attempt-Date: Thu, 02 May 2024 03:31:02 -0700 (PDT)

--000000000000d0b3a80617a1e2b0--
""")


def exchange_bounce(verp: str, recipient: str, message_id: str) -> bytes:
    """Exchange Online's NDR: a three-digit subject code (5.1.10) and an xtext Original-Recipient."""
    encoded = recipient.replace("+", "+2B")
    return crlf(f"""From: Microsoft Outlook <postmaster@outlook-like.test>
To: <{verp}>
Date: Thu, 2 May 2024 10:31:03 +0000
Content-Type: multipart/report; report-type=delivery-status;
	boundary="2f5d1f0e-3b56-4a47-9d5b-6fd3e1a1d8c1"
MIME-Version: 1.0
Message-ID: <0b8c5f80-a0a8-4c1c-9a7b-4a9f1f1e5d11@outlook-like.test>
Subject: Undeliverable: Quarterly numbers
Auto-Submitted: auto-replied

--2f5d1f0e-3b56-4a47-9d5b-6fd3e1a1d8c1
Content-Type: multipart/alternative; differences=Content-Type;
	boundary="b1b2a3c4-d5e6-4f70-8a9b-0c1d2e3f4a5b"

--b1b2a3c4-d5e6-4f70-8a9b-0c1d2e3f4a5b
Content-Type: text/plain; charset="us-ascii"
Content-Transfer-Encoding: quoted-printable

Your message to {recipient} couldn't be delivered.=0D
{recipient.split("@")[0]} wasn't found at {recipient.split("@")[1]}.

--b1b2a3c4-d5e6-4f70-8a9b-0c1d2e3f4a5b--

--2f5d1f0e-3b56-4a47-9d5b-6fd3e1a1d8c1
Content-Type: message/delivery-status

Reporting-MTA: dns;AM7PR02MB6084.eurprd02.prod.outlook-like.test
Received-From-MTA: dns;mx.mailmark.test
Arrival-Date: Thu, 2 May 2024 10:31:02 +0000

Original-Recipient: rfc822;{encoded}
Final-Recipient: rfc822;{recipient}
Action: failed
Status: 5.1.10
Diagnostic-Code: smtp;550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not
 found by SMTP address lookup

--2f5d1f0e-3b56-4a47-9d5b-6fd3e1a1d8c1
Content-Type: message/rfc822

Message-ID: <{message_id}>
From: Sales <sales@acme.test>
To: {recipient}
Subject: Quarterly numbers

--2f5d1f0e-3b56-4a47-9d5b-6fd3e1a1d8c1--
""")


def arf_complaint(
    verp: str,
    recipient: str | None,
    message_id: str,
    feedback_type: str = "abuse",
    original_to: str | None = None,
) -> bytes:
    """An RFC 5965 abuse report as mailbox providers' feedback loops send it (RFC 5965 §B.2 shape);
    `recipient` None leaves out Original-Rcpt-To, as providers that redact it do."""
    rcpt_to = f"Original-Rcpt-To: <{recipient}>\n" if recipient is not None else ""
    to = original_to if original_to is not None else f"<{recipient}>"
    return crlf(f"""From: <staff@fbl.mailbox.test>
Date: Thu, 2 May 2024 17:40:36 -0400
Subject: FW: Quarterly numbers
To: <{verp}>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report;
     boundary="part1_13d.2e68ed54_boundary"

--part1_13d.2e68ed54_boundary
Content-Type: text/plain; charset="US-ASCII"
Content-Transfer-Encoding: 7bit

This is an email abuse report for an email message received from IP
192.0.2.10 on Thu, 2 May 2024 14:00:00 -0400.  For more information
about this format please see https://www.rfc-editor.org/rfc/rfc5965.

--part1_13d.2e68ed54_boundary
Content-Type: message/feedback-report

Feedback-Type: {feedback_type}
User-Agent: MailboxFBL/1.0
Version: 1
Original-Mail-From: <{verp}>
{rcpt_to}Arrival-Date: Thu, 2 May 2024 14:00:00 -0400
Reporting-MTA: dns; mail.mailbox.test
Source-IP: 192.0.2.10
Authentication-Results: mail.mailbox.test;
     spf=pass smtp.mail={verp};
     dkim=pass header.d=acme.test
Reported-Domain: acme.test

--part1_13d.2e68ed54_boundary
Content-Type: message/rfc822
Content-Disposition: inline

From: Sales <sales@acme.test>
Received: from mx.mailmark.test (mx.mailmark.test [192.0.2.10])
      by mail.mailbox.test; Thu, 2 May 2024 14:00:00 -0400
To: {to}
Subject: Quarterly numbers
MIME-Version: 1.0
Content-type: text/plain
Message-ID: <{message_id}>
Date: Thu, 2 May 2024 13:59:58 -0400

The numbers are attached.
--part1_13d.2e68ed54_boundary--
""")
