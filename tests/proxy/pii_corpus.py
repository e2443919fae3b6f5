"""A labelled PII corpus from published examples (the source of each group is named), and negatives that look
like numbers or addresses but are not PII. Each case: a sentence and the (entity, value) pairs in it.

Sources: e-mail - RFC 2606 reserved example domains; phone numbers - libphonenumber's example numbers
(``phonenumbers.example_number``), NANP 555-01xx fictional numbers, Ofcom's drama range (020 7946 0xxx);
payment cards - the test numbers published by Stripe, PayPal/Braintree and the card networks; IBAN - the
examples of the SWIFT IBAN registry; US SSN - numbers of valid structure (the SSA's rules), the SSA's
never-issued ranges and its advertising number 078-05-1120 as negatives; IP - RFC 5737 (IPv4) and RFC 3849
(IPv6) documentation ranges; Spanish DNI/NIE - the Ministry of the Interior's worked example (12345678Z);
Italian codice fiscale - the Agenzia delle Entrate's textbook example (Mario Rossi); Aadhaar - Verhoeff-valid
numbers of UIDAI's format.
"""

from __future__ import annotations

Case = tuple[str, list[tuple[str, str]]]

POSITIVES: list[Case] = [
    # EMAIL_ADDRESS (RFC 2606)
    ("write to jane.doe@example.com today", [("EMAIL_ADDRESS", "jane.doe@example.com")]),
    ("cc: info@example.org, thanks", [("EMAIL_ADDRESS", "info@example.org")]),
    ("alias user+tag@example.net works", [("EMAIL_ADDRESS", "user+tag@example.net")]),
    ("<first.last@sub.example.co.uk>", [("EMAIL_ADDRESS", "first.last@sub.example.co.uk")]),
    ("x_y-z@example.io is mine", [("EMAIL_ADDRESS", "x_y-z@example.io")]),
    ("Mail: O.Brien99@test.example.com.", [("EMAIL_ADDRESS", "O.Brien99@test.example.com")]),
    # PHONE_NUMBER (libphonenumber examples, NANP fictional, Ofcom drama)
    ("call +1 201-555-0123 now", [("PHONE_NUMBER", "+1 201-555-0123")]),
    ("office (201) 555-0123", [("PHONE_NUMBER", "(201) 555-0123")]),
    ("desk 415-555-0100, ext 2", [("PHONE_NUMBER", "415-555-0100")]),
    ("London +44 20 7946 0958", [("PHONE_NUMBER", "+44 20 7946 0958")]),
    ("Birmingham +44 121 234 5678.", [("PHONE_NUMBER", "+44 121 234 5678")]),
    ("Berlin +49 30 123456", [("PHONE_NUMBER", "+49 30 123456")]),
    ("Paris +33 1 23 45 67 89", [("PHONE_NUMBER", "+33 1 23 45 67 89")]),
    ("Tokyo +81 3-1234-5678", [("PHONE_NUMBER", "+81 3-1234-5678")]),
    ("mobile +91 74104 10123", [("PHONE_NUMBER", "+91 74104 10123")]),
    ("Sydney +61 2 1234 5678", [("PHONE_NUMBER", "+61 2 1234 5678")]),
    ("São Paulo +55 11 2345-6789", [("PHONE_NUMBER", "+55 11 2345-6789")]),
    ("Lausanne +41 21 234 56 78", [("PHONE_NUMBER", "+41 21 234 56 78")]),
    ("Madrid +34 810 12 34 56", [("PHONE_NUMBER", "+34 810 12 34 56")]),
    ("Milano +39 02 1234 5678", [("PHONE_NUMBER", "+39 02 1234 5678")]),
    ("Rotterdam +31 10 123 4567", [("PHONE_NUMBER", "+31 10 123 4567")]),
    ("Stockholm +46 8 12 34 56", [("PHONE_NUMBER", "+46 8 12 34 56")]),
    ("E.164 +442079460958 stored", [("PHONE_NUMBER", "+442079460958")]),
    # CREDIT_CARD (published test numbers)
    ("visa 4111 1111 1111 1111 exp 12/30", [("CREDIT_CARD", "4111 1111 1111 1111")]),
    ("stripe 4242424242424242", [("CREDIT_CARD", "4242424242424242")]),
    ("visa 4012888888881881", [("CREDIT_CARD", "4012888888881881")]),
    ("mc 5555-5555-5555-4444", [("CREDIT_CARD", "5555-5555-5555-4444")]),
    ("mc 5105105105105100", [("CREDIT_CARD", "5105105105105100")]),
    ("mc2 2223003122003222", [("CREDIT_CARD", "2223003122003222")]),
    ("amex 378282246310005", [("CREDIT_CARD", "378282246310005")]),
    ("amex 3714 496353 98431", [("CREDIT_CARD", "3714 496353 98431")]),
    ("discover 6011111111111117", [("CREDIT_CARD", "6011111111111117")]),
    ("discover 6011000990139424", [("CREDIT_CARD", "6011000990139424")]),
    ("jcb 3530111333300000", [("CREDIT_CARD", "3530111333300000")]),
    ("jcb 3566002020360505", [("CREDIT_CARD", "3566002020360505")]),
    ("diners 30569309025904", [("CREDIT_CARD", "30569309025904")]),
    ("diners 38520000023237", [("CREDIT_CARD", "38520000023237")]),
    # IBAN_CODE (IBAN registry examples)
    ("IBAN GB29 NWBK 6016 1331 9268 19", [("IBAN_CODE", "GB29 NWBK 6016 1331 9268 19")]),
    ("iban DE89370400440532013000.", [("IBAN_CODE", "DE89370400440532013000")]),
    ("FR14 2004 1010 0505 0001 3M02 606 is it", [("IBAN_CODE", "FR14 2004 1010 0505 0001 3M02 606")]),
    ("pay ES91 2100 0418 4502 0005 1332", [("IBAN_CODE", "ES91 2100 0418 4502 0005 1332")]),
    ("NL91ABNA0417164300", [("IBAN_CODE", "NL91ABNA0417164300")]),
    ("IT60 X054 2811 1010 0000 0123 456", [("IBAN_CODE", "IT60 X054 2811 1010 0000 0123 456")]),
    ("BE68 5390 0754 7034 here", [("IBAN_CODE", "BE68 5390 0754 7034")]),
    ("CH93 0076 2011 6238 5295 7", [("IBAN_CODE", "CH93 0076 2011 6238 5295 7")]),
    ("AT61 1904 3002 3457 3201", [("IBAN_CODE", "AT61 1904 3002 3457 3201")]),
    ("PL61 1090 1014 0000 0712 1981 2874", [("IBAN_CODE", "PL61 1090 1014 0000 0712 1981 2874")]),
    # US_SSN (valid structure)
    ("my ssn is 123-45-6789", [("US_SSN", "123-45-6789")]),
    ("SSN: 536-90-4399.", [("US_SSN", "536-90-4399")]),
    ("ssn 001 01 0001", [("US_SSN", "001 01 0001")]),
    # IP_ADDRESS (RFC 5737, RFC 3849)
    ("server 192.0.2.1 is down", [("IP_ADDRESS", "192.0.2.1")]),
    ("from 198.51.100.42:", [("IP_ADDRESS", "198.51.100.42")]),
    ("gw 203.0.113.7", [("IP_ADDRESS", "203.0.113.7")]),
    ("v6 2001:db8::1 up", [("IP_ADDRESS", "2001:db8::1")]),
    ("host 2001:db8:85a3::8a2e:370:7334.", [("IP_ADDRESS", "2001:db8:85a3::8a2e:370:7334")]),
    # ES_NIF, IT_FISCAL_CODE, IN_AADHAAR
    ("DNI 12345678Z", [("ES_NIF", "12345678Z")]),
    ("NIE X1234567L", [("ES_NIF", "X1234567L")]),
    ("CF RSSMRA85T10A562S", [("IT_FISCAL_CODE", "RSSMRA85T10A562S")]),
    ("aadhaar 2341 2341 2346", [("IN_AADHAAR", "2341 2341 2346")]),
    # several in one text
    ("jane.doe@example.com, +44 20 7946 0958, 4242424242424242",
     [("EMAIL_ADDRESS", "jane.doe@example.com"), ("PHONE_NUMBER", "+44 20 7946 0958"),
      ("CREDIT_CARD", "4242424242424242")]),
]

NEGATIVES: list[str] = [
    "on 2024-05-17 at 10:30:00",
    "due 12/30/2024, paid 01.02.2023",
    "version 1.2.3 and v10.4.1, build 2024.05.17",
    "order 1234567890123 shipped",
    "ticket ORD-2024-000123",
    "tracking 1Z999AA10123456784",
    "total 12 500 EUR, or 1,234,567 JPY",
    "pi is 3.14159265358979",
    "ISBN 978-3-16-148410-0",
    "call ext. 4021 or room 101-202",
    "years 1999 2000 2001 2002",
    "card 4111 1111 1111 1112 (fails Luhn)",
    "card 1234 5678 9012 3456",
    "ssn 000-12-3456, 666-12-3456, 900-12-3456, 123-00-4567, 078-05-1120",
    "iban GB29 NWBK 6016 1331 9268 18 (wrong check digits)",
    "ip 999.1.1.1 and 1.2.3 and std::vector and 10:30:45",
    "not an email: a@b, user@localhost, @handle, name at example dot com",
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "sha 9f86d081884c7d65 and port 8080",
    "coordinates 48.8566, 2.3522",
    "phone-like 555-0100 and 12-34-56",
    "NIF 12345678A (wrong letter)",
]
