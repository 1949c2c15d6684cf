"""Forms of the hosted sign-in pages (Flask-WTF: every one carries a CSRF token)."""

from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SubmitField
from wtforms.validators import DataRequired, Length


class LoginForm(FlaskForm):
    tx = HiddenField()
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)],
                       render_kw={"autocomplete": "username", "autofocus": True,
                                  "spellcheck": "false", "autocapitalize": "none"})
    password = PasswordField("Password", validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})
    submit = SubmitField("Sign in")


class ConsentForm(FlaskForm):
    tx = HiddenField()
    allow = SubmitField("Allow")
    deny = SubmitField("Cancel")


class SignOutForm(FlaskForm):
    submit = SubmitField("Sign out")
