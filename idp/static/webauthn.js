/* Passkeys and security keys on the hosted pages (W3C Web Authentication, Level 2).
 *
 * The page's <form> holds an element id="webauthn" with data-webauthn="register" or
 * "authenticate", and inside it:
 *   <script type="application/json" id="webauthn-options">  the options, binary as base64url
 *   <input type="hidden" name="credential" id="webauthn-credential">
 *   <p id="webauthn-status" role="alert" hidden>               where errors are shown
 * Submitting the form runs the ceremony first (navigator.credentials.create or .get), puts
 * the credential as JSON (binary fields base64url, the shape of PublicKeyCredential's
 * toJSON() in Level 3) in the hidden input, then submits. No inline script and no third-party
 * code: the page's CSP is default-src 'self'.
 *
 * The sign-in page holds a form id="passkey-form" instead (a passkey as the first step):
 *   <script type="application/json" id="passkey-options">    a request naming no credential
 *   <input type="hidden" name="credential" id="passkey-credential">
 *   <button type="button" id="passkey-button" hidden>         shown where passkeys work
 *   <p id="passkey-status" role="alert" hidden>
 * Where the browser supports it, the passkeys it holds for this site are offered in the
 * email field's autofill (conditional mediation: the field says autocomplete="username
 * webauthn"); the button asks in the browser's own dialog, after stopping that request.
 */
(function () {
  "use strict";

  function toBuffer(base64url) {
    var base64 = base64url.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) base64 += "=";
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) binary += String.fromCharCode(bytes[i]);
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      var out = { type: d.type, id: toBuffer(d.id) };
      if (d.transports) out.transports = d.transports;
      return out;
    });
  }

  function creationOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.user = Object.assign({}, json.user, { id: toBuffer(json.user.id) });
    options.excludeCredentials = descriptors(json.excludeCredentials);
    return options;
  }

  function requestOptions(json) {
    var options = Object.assign({}, json);
    options.challenge = toBuffer(json.challenge);
    options.allowCredentials = descriptors(json.allowCredentials);
    return options;
  }

  function common(credential) {
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults ? credential.getClientExtensionResults() : {}
    };
  }

  function registrationJSON(credential) {
    var r = credential.response;
    var out = common(credential);
    out.response = {
      clientDataJSON: toBase64url(r.clientDataJSON),
      attestationObject: toBase64url(r.attestationObject),
      transports: typeof r.getTransports === "function" ? r.getTransports() : []
    };
    return out;
  }

  function assertionJSON(credential) {
    var r = credential.response;
    var out = common(credential);
    out.response = {
      clientDataJSON: toBase64url(r.clientDataJSON),
      authenticatorData: toBase64url(r.authenticatorData),
      signature: toBase64url(r.signature),
      userHandle: r.userHandle ? toBase64url(r.userHandle) : null
    };
    return out;
  }

  // The messages in the page's language: a page may give them, by key, in
  // <script type="application/json" id="webauthn-words">; English where it does not.
  var translated = null;
  function words(key, english) {
    if (translated === null) {
      var source = document.getElementById("webauthn-words");
      try {
        translated = source ? JSON.parse(source.textContent) : {};
      } catch (e) {
        translated = {};
      }
    }
    return translated[key] || english;
  }

  function explain(error, registering) {
    switch (error && error.name) {
      case "NotAllowedError":
        return words("cancelled", "The request was cancelled or timed out. Try again when you are ready.");
      case "InvalidStateError":
        return registering
          ? words("registered", "This passkey or security key is registered on your account already. Use another one.")
          : words("unusable", "This passkey or security key cannot be used here. Try another one.");
      case "SecurityError":
        return words("address", "This address cannot use passkeys. Ask your administrator to check the sign-in address.");
      case "NotSupportedError":
        return words("unsupported", "This passkey or security key does not support what this site needs. Try another one.");
      case "AbortError":
        return words("stopped", "The request was stopped. Try again.");
      default:
        return words("failed", "Your passkey or security key could not be used. Try again.");
    }
  }

  function init() {
    var box = document.getElementById("webauthn");
    var source = document.getElementById("webauthn-options");
    if (!box || !source) return;
    var form = box.closest("form");
    var field = document.getElementById("webauthn-credential");
    var status = document.getElementById("webauthn-status");
    var mode = box.getAttribute("data-webauthn");
    var registering = mode === "register";
    var busy = false;

    function say(message) {
      status.textContent = message;
      status.hidden = !message;
    }

    if (!window.PublicKeyCredential || !navigator.credentials) {
      say(words("browser", "This browser cannot use passkeys or security keys. Use another browser or another method."));
      return;
    }

    form.addEventListener("submit", function (event) {
      if (field.value) return; // the credential is there: let the form go
      event.preventDefault();
      if (busy) return;
      var options;
      try {
        options = JSON.parse(source.textContent);
      } catch (e) {
        say(words("damaged", "This page is damaged. Reload it and try again."));
        return;
      }
      busy = true;
      say("");
      box.setAttribute("aria-busy", "true");
      var ceremony = registering
        ? navigator.credentials.create({ publicKey: creationOptions(options) })
        : navigator.credentials.get({ publicKey: requestOptions(options) });
      ceremony.then(function (credential) {
        if (!credential) throw new Error("no credential");
        field.value = JSON.stringify(registering ? registrationJSON(credential) : assertionJSON(credential));
        form.submit(); // submit() fires no submit event: no second ceremony
      }).catch(function (error) {
        busy = false;
        box.removeAttribute("aria-busy");
        say(explain(error, registering));
      });
    });
  }

  function initPasskeySignIn() {
    var form = document.getElementById("passkey-form");
    var source = document.getElementById("passkey-options");
    if (!form || !source) return;
    if (!window.PublicKeyCredential || !navigator.credentials) return; // the password stays
    var field = document.getElementById("passkey-credential");
    var status = document.getElementById("passkey-status");
    var button = document.getElementById("passkey-button");
    var json;
    try {
      json = JSON.parse(source.textContent);
    } catch (e) {
      return;
    }
    var autofill = null; // the conditional request, stopped before the button's own
    var sent = false;

    function say(message) {
      status.textContent = message;
      status.hidden = !message;
    }

    function send(credential) {
      if (sent || !credential) return;
      sent = true;
      field.value = JSON.stringify(assertionJSON(credential));
      form.submit();
    }

    function ask(mediation) {
      var controller = window.AbortController ? new AbortController() : null;
      var request = { publicKey: requestOptions(json) };
      if (controller) request.signal = controller.signal;
      if (mediation) request.mediation = mediation;
      return { controller: controller, promise: navigator.credentials.get(request) };
    }

    if (typeof PublicKeyCredential.isConditionalMediationAvailable === "function") {
      PublicKeyCredential.isConditionalMediationAvailable().then(function (available) {
        if (!available || sent) return;
        autofill = ask("conditional");
        autofill.promise.then(send).catch(function () { /* stopped, or nothing chosen */ });
      }).catch(function () {});
    }

    button.hidden = false;
    button.addEventListener("click", function () {
      if (sent) return;
      if (autofill && autofill.controller) autofill.controller.abort();
      autofill = null;
      say("");
      button.setAttribute("aria-busy", "true");
      ask(null).promise.then(function (credential) {
        if (!credential) throw new Error("no credential");
        send(credential);
      }).catch(function (error) {
        button.removeAttribute("aria-busy");
        say(explain(error, false));
      });
    });
  }

  function start() {
    init();
    initPasskeySignIn();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
