"""Reading text: profile texts and passages, cues in a need, countries, places, lexical features."""
