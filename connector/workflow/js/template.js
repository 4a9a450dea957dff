// ${...} templates, evaluated as Treasure Workflow evaluates them.
//
// The text between "${" and its matching "}" is a JavaScript expression, evaluated with the
// parameters in scope. null and undefined insert nothing, a string is inserted as it is, any
// other value as JSON. "${name:...}" (lower-case letters then a colon, as in ${secret:KEY}) is
// not an expression: it stays as written, for the operator that reads it. In the text around
// expressions "$$" is one "$". An unterminated "${" is text.
var __connector = (function () {
  "use strict";
  var START = /\$\{(?![a-z]+:)/;
  var params = {};

  function text(s) {
    return s.replace(/\$\$/g, "$");
  }

  // The parts of a template: strings, and {expr: "..."} for each expression.
  function parse(input) {
    var parts = [];
    var rest = input;
    while (rest.length > 0) {
      var m = START.exec(rest);
      if (m === null) {
        parts.push(text(rest));
        break;
      }
      parts.push(text(rest.slice(0, m.index)));
      var body = rest.slice(m.index + 2);
      var depth = 0;
      var end = -1;
      for (var i = 0; i < body.length; i++) {
        var c = body.charAt(i);
        if (c === "{") {
          depth++;
        } else if (c === "}") {
          if (depth === 0) {
            end = i;
            break;
          }
          depth--;
        }
      }
      if (end < 0) {
        parts.push(text(rest.slice(m.index)));
        break;
      }
      if (end > 0) {
        parts.push({expr: body.slice(0, end)});
      }
      rest = body.slice(end + 1);
    }
    return parts;
  }

  function render(value) {
    if (value === null || value === undefined) {
      return "";
    }
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  function evaluate(expr, scope) {
    // Sloppy-mode function: `with` puts every parameter in scope by its name.
    var fn = new Function("__scope", "with (__scope) { return (" + expr + "\n); }");
    return fn(scope);
  }

  function describe(e) {
    if (e && typeof e === "object" && "message" in e) {
      return (e.name || "Error") + ": " + e.message;
    }
    return String(e);
  }

  return {
    // The parameters every following template sees (a task's parameters), as JSON text.
    setParams: function (json) {
      params = JSON.parse(json);
      return true;
    },
    // {ok: text} or {error: message, expr: the expression that failed}. `local` (JSON text)
    // holds values that shadow the parameters: the keys evaluated before this one.
    template: function (input, local) {
      var scope = params;
      if (local) {
        scope = Object.assign({}, params, JSON.parse(local));
      }
      var parts;
      try {
        parts = parse(input);
      } catch (e) {
        return {error: describe(e), expr: input};
      }
      var out = "";
      for (var i = 0; i < parts.length; i++) {
        var part = parts[i];
        if (typeof part === "string") {
          out += part;
          continue;
        }
        try {
          out += render(evaluate(part.expr, scope));
        } catch (e) {
          return {error: describe(e), expr: part.expr};
        }
      }
      return {ok: out};
    }
  };
})();
