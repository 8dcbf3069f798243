"""The markup and CSS of each layout, before inlining. Fields arrive escaped (see
campaigns.layouts); Jinja placeholders for the offer and the unsubscribe link are ours.

Email HTML is its own dialect: tables for structure (Outlook's Word engine has no flexbox
nor reliable divs), widths as attributes too, web-safe font stacks, no shorthand the old
clients misread, and @media rules marked !important so they win over the inlined styles.
"""

from __future__ import annotations

CSS = """
body { margin: 0; padding: 0; background-color: #eef1f5; }
table { border-collapse: collapse; }
.wrapper { width: 100%; background-color: #eef1f5; }
.outer { padding: 24px 12px; }
.container { width: 600px; max-width: 600px; background-color: #ffffff; border-radius: 8px; }
.header { background-color: #1f3a8a; color: #ffffff; padding: 20px 32px; font-family: Helvetica, Arial, sans-serif;
          font-size: 18px; font-weight: bold; letter-spacing: 0.5px; border-radius: 8px 8px 0 0; }
.header-quiet { background-color: #ffffff; color: #1f3a8a; padding: 24px 32px 0 32px; font-family: Georgia, 'Times New Roman', serif;
                font-size: 18px; font-weight: bold; border-radius: 8px 8px 0 0; }
.content { padding: 28px 32px 8px 32px; font-family: Helvetica, Arial, sans-serif; color: #1f2937; }
.letter { padding: 20px 32px 8px 32px; font-family: Georgia, 'Times New Roman', serif; color: #1f2937; }
h1 { font-size: 26px; line-height: 32px; margin: 0 0 16px 0; color: #111827; font-weight: bold; }
p { font-size: 16px; line-height: 24px; margin: 0 0 16px 0; }
.offer-cell { padding: 8px 32px 8px 32px; }
.offer { background-color: #eef4ff; border: 2px dashed #1f3a8a; border-radius: 8px; padding: 20px; text-align: center;
         font-family: Helvetica, Arial, sans-serif; }
.discount { font-size: 34px; line-height: 40px; font-weight: bold; color: #1f3a8a; margin: 0 0 8px 0; }
.code-label { font-size: 13px; color: #4b5563; margin: 0 0 6px 0; text-transform: uppercase; letter-spacing: 1px; }
.code { font-family: 'Courier New', Courier, monospace; font-size: 20px; font-weight: bold; letter-spacing: 2px;
        color: #111827; background-color: #ffffff; border: 1px solid #bcd0f5; padding: 8px 16px; }
.coupon { background-color: #fff7e6; border: 3px dashed #c2410c; border-radius: 12px; padding: 28px 20px; text-align: center;
          font-family: Helvetica, Arial, sans-serif; }
.coupon-discount { font-size: 48px; line-height: 54px; font-weight: bold; color: #c2410c; margin: 0 0 4px 0; }
.coupon-note { font-size: 14px; color: #7c2d12; margin: 0 0 12px 0; }
.button-row { padding: 16px 32px 28px 32px; }
.button-cell { background-color: #1d4ed8; border-radius: 6px; }
.button-link { display: inline-block; padding: 14px 28px; font-family: Helvetica, Arial, sans-serif; font-size: 16px;
               font-weight: bold; color: #ffffff; text-decoration: none; border-radius: 6px; }
.footer { padding: 20px 32px 28px 32px; font-family: Helvetica, Arial, sans-serif; font-size: 12px; line-height: 18px;
          color: #6b7280; border-top: 1px solid #e5e7eb; }
.footer a { color: #4b5563; text-decoration: underline; }
@media only screen and (max-width: 620px) {
  .container { width: 100% !important; border-radius: 0 !important; }
  .outer { padding: 0 !important; }
  .content, .letter { padding: 20px 18px 4px 18px !important; }
  .header, .header-quiet { padding: 16px 18px !important; border-radius: 0 !important; }
  .offer-cell, .button-row, .footer { padding-left: 18px !important; padding-right: 18px !important; }
  h1 { font-size: 22px !important; line-height: 28px !important; }
  .discount { font-size: 28px !important; line-height: 34px !important; }
  .coupon-discount { font-size: 38px !important; line-height: 44px !important; }
  .button-cell, .button-link { display: block !important; text-align: center !important; }
}
"""

HEAD = """<!doctype html>
<html lang="en" xmlns="http://www.w3.org/1999/xhtml">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting">
<title>{headline_plain}</title>
<style>{css}</style>
</head>
<body>
<table role="presentation" class="wrapper" width="100%" cellpadding="0" cellspacing="0" border="0"><tr><td class="outer" align="center">
<!--[if mso]><table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0"><tr><td><![endif]-->
<table role="presentation" class="container" width="600" cellpadding="0" cellspacing="0" border="0">
"""

FOOT = """<tr><td class="footer">
{brand_line}You receive this email because you are a customer. <a href="{{{{ unsubscribe_url }}}}">Unsubscribe</a>
</td></tr>
</table>
<!--[if mso]></td></tr></table><![endif]-->
</td></tr></table>
</body>
</html>
"""

BUTTON = """<tr><td class="button-row" align="{align}">
<table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>
<td class="button-cell" bgcolor="#1d4ed8" align="center"><a class="button-link" href="{{{{ offer.landing_url }}}}" target="_blank">{button}</a></td>
</tr></table>
</td></tr>
"""

OFFER_BOX = """<tr><td class="offer-cell">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr><td class="offer">
<p class="discount">{{ offer.discount }}</p>
{% if offer.code %}<p class="code-label">Your code</p>
<span class="code">{{ offer.code }}</span>{% endif %}
</td></tr></table>
</td></tr>
"""

# Not .format()ed: plain Jinja.
COUPON_BOX = """<tr><td class="offer-cell">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr><td class="coupon">
<p class="coupon-discount">{{ offer.discount }}</p>
<p class="coupon-note">{{ offer.name }}</p>
{% if offer.code %}<span class="code">{{ offer.code }}</span>{% endif %}
</td></tr></table>
</td></tr>
"""


def _headline(fields: dict) -> str:
    return f"<h1>{fields['headline']}</h1>\n" if fields["headline"] else ""


def document(key: str, fields: dict) -> str:
    """The whole document of layout `key` (CSS still in <style>: the caller inlines it)."""
    # The <title> takes the headline without markup; tokens in it are restored like elsewhere.
    head = HEAD.format(headline_plain=fields["headline"] or fields["brand"] or "", css=CSS)
    brand_line = f"{fields['brand']} · " if fields["brand"] else ""
    button = BUTTON.format(button=fields["button"], align="left" if key == "letter" else "center") if fields["button"] else ""
    if key == "letter":
        header = f'<tr><td class="header-quiet">{fields["brand"]}</td></tr>\n' if fields["brand"] else ""
        body = f'<tr><td class="letter">{_headline(fields)}{fields["body"]}</td></tr>\n'
        return head + header + body + button + FOOT.format(brand_line=brand_line)
    header = f'<tr><td class="header">{fields["brand"] or "&nbsp;"}</td></tr>\n'
    if key == "coupon":
        intro = f'<tr><td class="content">{_headline(fields)}</td></tr>\n' if fields["headline"] else ""
        body = f'<tr><td class="content">{fields["body"]}</td></tr>\n' if fields["body"] else ""
        return head + header + intro + COUPON_BOX + body + button + FOOT.format(brand_line=brand_line)
    body = f'<tr><td class="content">{_headline(fields)}{fields["body"]}</td></tr>\n'
    return head + header + body + OFFER_BOX + button + FOOT.format(brand_line=brand_line)
