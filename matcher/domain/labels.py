"""The words people read for the codes of the catalog: one vocabulary, defined once.

Codes (``civil_society``, ``advisor``, ``tr``) are what the API, files and
quotas use; every page, report, export and reason shows the labels below.
Each wording stands here once so that the web page, the invitation list, the
landscape report and the explanations all say the same thing.

Singular labels are written as they stand inside a sentence ("eine kommunale
Stelle"); a heading or a sentence start capitalises them with
:func:`matcher.domain.formatting.capitalised`.
"""

from __future__ import annotations

__all__ = [
    "ADVISOR_GROUP",
    "UNTYPED_GROUP",
    "KIND_LABELS",
    "ORG_TYPE_LABELS_DE",
    "ORG_TYPE_PLURALS_DE",
    "ORG_TYPE_PLURALS_DATIVE_DE",
    "ORG_TYPE_HEADING_LINES_DE",
    "ORG_TYPE_LABELS_EN",
    "ORG_TYPE_PLURALS_EN",
    "GROUP_LABELS",
    "INVITEE_TYPE_LABELS",
    "LANGUAGE_NAMES_DE",
    "LANGUAGE_NAMES_EN",
    "APPLICANT_TYPE_PLURALS_DE",
    "APPLICANT_TYPE_LABELS_DE",
    "PARTNER_KIND_LABELS_DE",
]

# the entity kinds as a person reads them (the codes stay what the API and files use)
KIND_LABELS = {"advisor": "Beraterin oder Berater", "organisation": "Organisation", "event": "Veranstaltung",
               "municipality": "Kommune", "programme": "Förderprogramm"}

# organisation types (schema.ORG_TYPES), which are also the actor types of the landscape report
ORG_TYPE_LABELS_DE = {"migrant_organisation": "Migrantenorganisation",
                      "civil_society": "Eine-Welt- oder zivilgesellschaftliche Gruppe",
                      "municipal_office": "kommunale Stelle", "institution": "Einrichtung"}
ORG_TYPE_PLURALS_DE = {"migrant_organisation": "Migrantenorganisationen",
                       "civil_society": "Eine-Welt- und zivilgesellschaftliche Gruppen",
                       "municipal_office": "kommunale Stellen", "institution": "Einrichtungen"}
# after "mit", "von": "sucht die Zusammenarbeit mit kommunalen Stellen"
ORG_TYPE_PLURALS_DATIVE_DE = {"migrant_organisation": "Migrantenorganisationen",
                              "civil_society": "Eine-Welt- und zivilgesellschaftlichen Gruppen",
                              "municipal_office": "kommunalen Stellen", "institution": "Einrichtungen"}
# the plurals as column headings broken by hand into lines (SVG text does not wrap)
ORG_TYPE_HEADING_LINES_DE = {"migrant_organisation": ("Migranten-", "organisationen"),
                             "civil_society": ("Eine-Welt- und", "zivilgesellschaftl.", "Gruppen"),
                             "municipal_office": ("Kommunale", "Stellen"), "institution": ("Einrichtungen",)}
ORG_TYPE_LABELS_EN = {"migrant_organisation": "migrant organisation",
                      "civil_society": "One World or civil-society group",
                      "municipal_office": "municipal office", "institution": "institution"}
ORG_TYPE_PLURALS_EN = {"migrant_organisation": "migrant organisations",
                       "civil_society": "One World and civil-society groups",
                       "municipal_office": "municipal offices", "institution": "institutions"}

# the groups an invitation list counts for its quotas: the organisation types, organisations
# without a type, and advisors (codes as a quota names them: "advisor:2")
ADVISOR_GROUP = "advisor"
UNTYPED_GROUP = "ohne_typ"
# plural, as a quota reads: „mindestens 40 % Migrantenorganisationen“
GROUP_LABELS = {**ORG_TYPE_PLURALS_DE, ADVISOR_GROUP: "Beraterinnen und Berater",
                UNTYPED_GROUP: "Organisationen ohne Typangabe"}
# singular, what one entry of the list is (the "Typ" column of an export, a line of the command line)
INVITEE_TYPE_LABELS = {**ORG_TYPE_LABELS_DE, ADVISOR_GROUP: "Beratung", UNTYPED_GROUP: "Organisation ohne Typangabe"}

# ISO 639-1 code -> (German name, English name)
_LANGUAGES = {
    "de": ("Deutsch", "German"),
    "en": ("Englisch", "English"),
    "fr": ("Französisch", "French"),
    "es": ("Spanisch", "Spanish"),
    "pt": ("Portugiesisch", "Portuguese"),
    "it": ("Italienisch", "Italian"),
    "tr": ("Türkisch", "Turkish"),
    "ar": ("Arabisch", "Arabic"),
    "fa": ("Persisch", "Persian"),
    "ku": ("Kurdisch", "Kurdish"),
    "ru": ("Russisch", "Russian"),
    "uk": ("Ukrainisch", "Ukrainian"),
    "pl": ("Polnisch", "Polish"),
    "ro": ("Rumänisch", "Romanian"),
    "bg": ("Bulgarisch", "Bulgarian"),
    "el": ("Griechisch", "Greek"),
    "sq": ("Albanisch", "Albanian"),
    "sr": ("Serbisch", "Serbian"),
    "hr": ("Kroatisch", "Croatian"),
    "bs": ("Bosnisch", "Bosnian"),
    "ti": ("Tigrinya", "Tigrinya"),
    "am": ("Amharisch", "Amharic"),
    "so": ("Somali", "Somali"),
    "sw": ("Swahili", "Swahili"),
    "tw": ("Twi", "Twi"),
    "yo": ("Yoruba", "Yoruba"),
    "ig": ("Igbo", "Igbo"),
    "ha": ("Hausa", "Hausa"),
    "ln": ("Lingala", "Lingala"),
    "wo": ("Wolof", "Wolof"),
    "vi": ("Vietnamesisch", "Vietnamese"),
    "zh": ("Chinesisch", "Chinese"),
    "ps": ("Paschtu", "Pashto"),
    "ur": ("Urdu", "Urdu"),
    "hi": ("Hindi", "Hindi"),
    "ta": ("Tamil", "Tamil"),
}
LANGUAGE_NAMES_DE = {code: de for code, (de, _) in _LANGUAGES.items()}
LANGUAGE_NAMES_EN = {code: en for code, (_, en) in _LANGUAGES.items()}

# who may apply for a funding programme (schema.APPLICANT_TYPES), as a funding guideline names them
APPLICANT_TYPE_PLURALS_DE = {"municipality": "Kommunen", "municipal_office": "kommunale Stellen",
                             "migrant_organisation": "Migrantenorganisationen", "eine_welt_group": "Eine-Welt-Gruppen",
                             "association": "andere Vereine"}
APPLICANT_TYPE_LABELS_DE = {"municipality": "Kommune", "municipal_office": "kommunale Stelle",
                            "migrant_organisation": "Migrantenorganisation", "eine_welt_group": "Eine-Welt-Gruppe",
                            "association": "anderer Verein"}
# the partners a programme requires (schema.RequiredPartner.kind)
PARTNER_KIND_LABELS_DE = {"municipality_abroad": "eine Partnerkommune im Ausland",
                          "partner_abroad": "eine Partnerorganisation im Ausland",
                          "german_municipality": "eine deutsche Kommune",
                          "civil_society": "ein zivilgesellschaftlicher Partner",
                          "migrant_organisation": "eine Migrantenorganisation"}
