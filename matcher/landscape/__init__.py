"""The landscape report: fields of action, who works in them, missing links."""
