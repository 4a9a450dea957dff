// moment(...) for workflow templates: the part of Moment.js (and moment-timezone's tz) that
// workflows use on session times, written for this project.
//
//   moment(session_time).format("YYYYMMDD")
//   moment(session_time).add(-1, "days").format("YYYY-MM-DD")
//   moment(session_time).tz("Asia/Tokyo").format("YYYY-MM-DD HH:mm:ss Z")
//   moment(session_time).utc().format()
//
// As on Treasure Workflow's servers, whose clock is UTC, moment's local time zone is UTC:
// moment("2016-01-30T00:00:00+09:00").format() is "2016-01-29T15:00:00+00:00". Use
// .tz(timezone) (or moment.parseZone) for the session's own zone. Zone rules come from the
// engine's ICU data (Intl.DateTimeFormat).
var moment = (function () {
  "use strict";

  var MINUTE = 60000;
  var HOUR = 3600000;
  var DAY = 86400000;

  var UNITS = {
    y: "year", year: "year", years: "year",
    Q: "quarter", quarter: "quarter", quarters: "quarter",
    M: "month", month: "month", months: "month",
    w: "week", week: "week", weeks: "week",
    isoWeek: "isoWeek", isoWeeks: "isoWeek", W: "isoWeek",
    d: "day", day: "day", days: "day", D: "day", date: "day", dates: "day",
    h: "hour", hour: "hour", hours: "hour",
    m: "minute", minute: "minute", minutes: "minute",
    s: "second", second: "second", seconds: "second",
    ms: "millisecond", millisecond: "millisecond", milliseconds: "millisecond"
  };
  var FIXED = {week: 7 * DAY, day: DAY, hour: HOUR, minute: MINUTE, second: 1000, millisecond: 1};

  var MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August",
    "September", "October", "November", "December"];
  var DAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
  var LONG = {
    LTS: "h:mm:ss A", LT: "h:mm A", L: "MM/DD/YYYY", LL: "MMMM D, YYYY",
    LLL: "MMMM D, YYYY h:mm A", LLLL: "dddd, MMMM D, YYYY h:mm A",
    l: "M/D/YYYY", ll: "MMM D, YYYY", lll: "MMM D, YYYY h:mm A", llll: "ddd, MMM D, YYYY h:mm A"
  };

  function fail(message) {
    throw new Error("moment: " + message);
  }

  function unitOf(name) {
    var u = UNITS[name] || UNITS[String(name).toLowerCase()];
    if (!u) {
      fail("unknown unit " + JSON.stringify(name));
    }
    return u;
  }

  // ---------------------------------------------------------------- zones

  var formatters = {};

  function formatter(zone) {
    if (!formatters[zone]) {
      try {
        formatters[zone] = new Intl.DateTimeFormat("en-US", {
          timeZone: zone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric",
          hour: "numeric", minute: "numeric", second: "numeric", era: "short"
        });
      } catch (e) {
        fail("unknown time zone " + JSON.stringify(zone));
      }
    }
    return formatters[zone];
  }

  // Minutes east of UTC in `zone` at the instant `ms`.
  function zoneOffset(zone, ms) {
    var parts = {};
    formatter(zone).formatToParts(new Date(ms)).forEach(function (p) {
      parts[p.type] = p.value;
    });
    var year = Number(parts.year);
    if (parts.era === "BC" || parts.era === "B") {
      year = 1 - year;
    }
    var wall = Date.UTC(year, Number(parts.month) - 1, Number(parts.day),
      Number(parts.hour) % 24, Number(parts.minute), Number(parts.second));
    var whole = ms - (((ms % 1000) + 1000) % 1000);
    return Math.round((wall - whole) / MINUTE);
  }

  // The instant whose wall time in `zone` is `wall` (a UTC-based ms count of the wall fields).
  // A repeated wall time takes its earlier instant; a skipped one moves forward by the gap.
  function zoneInstant(zone, wall) {
    var before = zoneOffset(zone, wall - DAY);
    var after = zoneOffset(zone, wall + DAY);
    var found = [];
    [before, after].forEach(function (offset) {
      var t = wall - offset * MINUTE;
      if (zoneOffset(zone, t) === offset && found.indexOf(t) < 0) {
        found.push(t);
      }
    });
    if (found.length === 0) {
      return wall - before * MINUTE;
    }
    return Math.min.apply(null, found);
  }

  // ---------------------------------------------------------------- the object

  // mode: "local" (UTC, the server's zone), "utc", "fixed" (offset minutes), "zone" (IANA).
  function Moment(ms, mode, offset, zone) {
    if (!isFinite(ms)) {
      fail("invalid date");
    }
    this._ms = ms;
    this._mode = mode || "local";
    this._offset = offset || 0;
    this._zone = zone || null;
  }

  var proto = Moment.prototype;

  proto._at = function (ms) {
    return new Moment(ms, this._mode, this._offset, this._zone);
  };

  proto.utcOffset = function (value) {
    if (value === undefined) {
      return this._mode === "zone" ? zoneOffset(this._zone, this._ms) : this._offset;
    }
    var minutes;
    if (typeof value === "string") {
      var m = /^([+-])(\d\d):?(\d\d)$/.exec(value.trim());
      if (!m) {
        fail("invalid offset " + JSON.stringify(value));
      }
      minutes = (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
    } else {
      minutes = Number(value);
      if (Math.abs(minutes) < 16) {
        minutes = minutes * 60; // as Moment.js: small numbers are hours
      }
    }
    return new Moment(this._ms, "fixed", minutes, null);
  };

  proto._wall = function () {
    return this._ms + this.utcOffset() * MINUTE;
  };

  proto._fromWall = function (wall) {
    if (this._mode === "zone") {
      return this._at(zoneInstant(this._zone, wall));
    }
    return this._at(wall - this._offset * MINUTE);
  };

  proto._fields = function () {
    var d = new Date(this._wall());
    return {
      year: d.getUTCFullYear(), month: d.getUTCMonth(), date: d.getUTCDate(),
      day: d.getUTCDay(), hour: d.getUTCHours(), minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(), ms: d.getUTCMilliseconds()
    };
  };

  proto.clone = function () {
    return this._at(this._ms);
  };
  proto.utc = function () {
    return new Moment(this._ms, "utc", 0, null);
  };
  proto.local = function () {
    return new Moment(this._ms, "local", 0, null);
  };
  proto.tz = function (zone) {
    if (zone === undefined) {
      return this._mode === "zone" ? this._zone : undefined;
    }
    formatter(String(zone));
    return new Moment(this._ms, "zone", 0, String(zone));
  };

  function roundHalfAway(n) {
    return n < 0 ? -Math.round(-n) : Math.round(n);
  }

  proto.add = function (amount, unit) {
    if (amount !== null && typeof amount === "object" && !(amount instanceof Moment)) {
      var out = this;
      Object.keys(amount).forEach(function (k) {
        out = out.add(amount[k], k);
      });
      return out;
    }
    var n = Number(amount);
    if (!isFinite(n)) {
      fail("add: " + JSON.stringify(amount) + " is not a number");
    }
    var u = unitOf(unit === undefined ? "ms" : unit);
    if (u === "isoWeek") {
      u = "week";
    }
    if (u === "hour" || u === "minute" || u === "second" || u === "millisecond") {
      return this._at(this._ms + n * FIXED[u]);
    }
    n = roundHalfAway(n);
    var f = this._fields();
    var timeOfDay = ((f.hour * 60 + f.minute) * 60 + f.second) * 1000 + f.ms;
    if (u === "day" || u === "week") {
      var days = u === "week" ? n * 7 : n;
      return this._fromWall(Date.UTC(f.year, f.month, f.date + days) + timeOfDay);
    }
    var months = u === "year" ? n * 12 : u === "quarter" ? n * 3 : n;
    var total = f.year * 12 + f.month + months;
    var year = Math.floor(total / 12);
    var month = total - year * 12;
    var last = new Date(Date.UTC(year, month + 1, 0)).getUTCDate();
    return this._fromWall(Date.UTC(year, month, Math.min(f.date, last)) + timeOfDay);
  };

  proto.subtract = function (amount, unit) {
    if (amount !== null && typeof amount === "object") {
      var negated = {};
      Object.keys(amount).forEach(function (k) {
        negated[k] = -Number(amount[k]);
      });
      return this.add(negated);
    }
    return this.add(-Number(amount), unit);
  };

  proto.startOf = function (unit) {
    var u = unitOf(unit);
    var f = this._fields();
    var wall;
    switch (u) {
      case "year": wall = Date.UTC(f.year, 0, 1); break;
      case "quarter": wall = Date.UTC(f.year, f.month - (f.month % 3), 1); break;
      case "month": wall = Date.UTC(f.year, f.month, 1); break;
      case "week": wall = Date.UTC(f.year, f.month, f.date - f.day); break;
      case "isoWeek": wall = Date.UTC(f.year, f.month, f.date - ((f.day + 6) % 7)); break;
      case "day": wall = Date.UTC(f.year, f.month, f.date); break;
      case "hour": wall = Date.UTC(f.year, f.month, f.date, f.hour); break;
      case "minute": wall = Date.UTC(f.year, f.month, f.date, f.hour, f.minute); break;
      case "second": wall = Date.UTC(f.year, f.month, f.date, f.hour, f.minute, f.second); break;
      default: return this.clone();
    }
    return this._fromWall(wall);
  };

  proto.endOf = function (unit) {
    var u = unitOf(unit);
    if (u === "millisecond") {
      return this.clone();
    }
    return this.startOf(u).add(1, u === "isoWeek" ? "week" : u).add(-1, "ms");
  };

  proto.valueOf = function () {
    return this._ms;
  };
  proto.unix = function () {
    return Math.floor(this._ms / 1000);
  };
  proto.toDate = function () {
    return new Date(this._ms);
  };
  proto.toISOString = function () {
    return new Date(this._ms).toISOString();
  };
  proto.toJSON = function () {
    return this.toISOString();
  };
  proto.toString = function () {
    return this.format("ddd MMM DD YYYY HH:mm:ss [GMT]ZZ");
  };
  proto.isValid = function () {
    return true;
  };
  proto.year = function () { return this._fields().year; };
  proto.month = function () { return this._fields().month; };
  proto.date = function () { return this._fields().date; };
  proto.day = function () { return this._fields().day; };
  proto.hour = function () { return this._fields().hour; };
  proto.minute = function () { return this._fields().minute; };
  proto.second = function () { return this._fields().second; };
  proto.millisecond = function () { return this._fields().ms; };

  proto.isBefore = function (other, unit) {
    return compare(this, other, unit) < 0;
  };
  proto.isAfter = function (other, unit) {
    return compare(this, other, unit) > 0;
  };
  proto.isSame = function (other, unit) {
    return compare(this, other, unit) === 0;
  };

  function compare(a, other, unit) {
    var b = toMoment(other);
    if (unit === undefined) {
      return a._ms - b._ms;
    }
    var start = a.startOf(unit)._ms;
    var end = a.endOf(unit)._ms;
    return b._ms < start ? 1 : b._ms > end ? -1 : 0;
  }

  proto.diff = function (other, unit, asFloat) {
    var b = toMoment(other);
    var u = unit === undefined ? "millisecond" : unitOf(unit);
    var out;
    if (u === "year" || u === "quarter" || u === "month") {
      out = monthDiff(this, b) / (u === "year" ? 12 : u === "quarter" ? 3 : 1);
    } else if (u === "day" || u === "week" || u === "isoWeek") {
      // Calendar days: the zone's offset change between the two is not counted.
      var zoneDelta = (b.utcOffset() - this.utcOffset()) * MINUTE;
      out = (this._ms - b._ms - zoneDelta) / (u === "day" ? DAY : 7 * DAY);
    } else {
      out = (this._ms - b._ms) / FIXED[u];
    }
    return asFloat ? out : (out < 0 ? Math.ceil(out) : Math.floor(out));
  };

  function monthDiff(a, b) {
    if (a._ms < b._ms) {
      return -monthDiff(b, a);
    }
    var fa = a._fields();
    var fb = b._fields();
    var whole = (fa.year - fb.year) * 12 + (fa.month - fb.month);
    var anchor = b.add(whole, "months");
    var next;
    if (a._ms - anchor._ms < 0) {
      next = b.add(whole - 1, "months");
      return whole - 1 + (a._ms - next._ms) / (anchor._ms - next._ms);
    }
    next = b.add(whole + 1, "months");
    return whole + (a._ms - anchor._ms) / (next._ms - anchor._ms);
  }

  // ---------------------------------------------------------------- format

  var TOKENS = /\[([^\]]*)\]|YYYY|YY|Y|Qo|Q|MMMM|MMM|MM|Mo|M|DDDD|DDDo|DDD|DD|Do|D|dddd|ddd|dd|do|d|E|e|GGGG|gggg|WW|Wo|W|ww|wo|w|HH|H|hh|h|kk|k|mm|m|ss|s|S{1,9}|A|a|ZZ|Z|X|x/g;

  function pad(n, width) {
    var s = String(Math.abs(n));
    while (s.length < width) {
      s = "0" + s;
    }
    return (n < 0 ? "-" : "") + s;
  }

  function ordinal(n) {
    var tens = n % 100;
    if (tens >= 11 && tens <= 13) {
      return n + "th";
    }
    return n + (["th", "st", "nd", "rd"][n % 10] || "th");
  }

  function dayOfYear(f) {
    return Math.round((Date.UTC(f.year, f.month, f.date) - Date.UTC(f.year, 0, 1)) / DAY) + 1;
  }

  // Week of year and its year: ISO (weeks start Monday, week 1 holds Jan 4) or the English
  // locale's (weeks start Sunday, week 1 holds Jan 1).
  function weekOf(f, iso) {
    var dow = iso ? 1 : 0;
    var doy = iso ? 4 : 6;
    var fixed = 7 + dow - doy;
    function firstWeekOffset(year) {
      var weekday = (7 + new Date(Date.UTC(year, 0, fixed)).getUTCDay() - dow) % 7;
      return -weekday + fixed - 1;
    }
    function weeksInYear(year) {
      var leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
      return (365 + (leap ? 1 : 0) - firstWeekOffset(year) + firstWeekOffset(year + 1)) / 7;
    }
    var week = Math.floor((dayOfYear(f) - firstWeekOffset(f.year) - 1) / 7) + 1;
    if (week < 1) {
      return {year: f.year - 1, week: week + weeksInYear(f.year - 1)};
    }
    if (week > weeksInYear(f.year)) {
      return {year: f.year + 1, week: week - weeksInYear(f.year)};
    }
    return {year: f.year, week: week};
  }

  function offsetText(minutes, colon) {
    var sign = minutes < 0 ? "-" : "+";
    var a = Math.abs(minutes);
    return sign + pad(Math.floor(a / 60), 2) + (colon ? ":" : "") + pad(a % 60, 2);
  }

  proto.format = function (pattern) {
    if (pattern === undefined || pattern === null || pattern === "") {
      pattern = this._mode === "utc" ? "YYYY-MM-DDTHH:mm:ss[Z]" : "YYYY-MM-DDTHH:mm:ssZ";
    }
    pattern = String(pattern).replace(/\[[^\]]*\]|LTS|LT|LLLL|LLL|LL|L|llll|lll|ll|l/g,
      function (t) {
        return LONG[t] || t;
      });
    var self = this;
    var f = this._fields();
    var offset = this.utcOffset();
    return pattern.replace(TOKENS, function (token, literal) {
      if (literal !== undefined) {
        return literal;
      }
      var h12 = f.hour % 12 === 0 ? 12 : f.hour % 12;
      switch (token) {
        case "YYYY": return pad(f.year, 4);
        case "YY": return pad(f.year % 100, 2);
        case "Y": return String(f.year);
        case "Q": return String(Math.floor(f.month / 3) + 1);
        case "Qo": return ordinal(Math.floor(f.month / 3) + 1);
        case "MMMM": return MONTHS[f.month];
        case "MMM": return MONTHS[f.month].slice(0, 3);
        case "MM": return pad(f.month + 1, 2);
        case "Mo": return ordinal(f.month + 1);
        case "M": return String(f.month + 1);
        case "DDDD": return pad(dayOfYear(f), 3);
        case "DDDo": return ordinal(dayOfYear(f));
        case "DDD": return String(dayOfYear(f));
        case "DD": return pad(f.date, 2);
        case "Do": return ordinal(f.date);
        case "D": return String(f.date);
        case "dddd": return DAYS[f.day];
        case "ddd": return DAYS[f.day].slice(0, 3);
        case "dd": return DAYS[f.day].slice(0, 2);
        case "do": return ordinal(f.day);
        case "d": return String(f.day);
        case "e": return String(f.day);
        case "E": return String(f.day === 0 ? 7 : f.day);
        case "GGGG": return pad(weekOf(f, true).year, 4);
        case "gggg": return pad(weekOf(f, false).year, 4);
        case "WW": return pad(weekOf(f, true).week, 2);
        case "Wo": return ordinal(weekOf(f, true).week);
        case "W": return String(weekOf(f, true).week);
        case "ww": return pad(weekOf(f, false).week, 2);
        case "wo": return ordinal(weekOf(f, false).week);
        case "w": return String(weekOf(f, false).week);
        case "HH": return pad(f.hour, 2);
        case "H": return String(f.hour);
        case "hh": return pad(h12, 2);
        case "h": return String(h12);
        case "kk": return pad(f.hour === 0 ? 24 : f.hour, 2);
        case "k": return String(f.hour === 0 ? 24 : f.hour);
        case "mm": return pad(f.minute, 2);
        case "m": return String(f.minute);
        case "ss": return pad(f.second, 2);
        case "s": return String(f.second);
        case "A": return f.hour < 12 ? "AM" : "PM";
        case "a": return f.hour < 12 ? "am" : "pm";
        case "ZZ": return offsetText(offset, false);
        case "Z": return offsetText(offset, true);
        case "X": return String(self.unix());
        case "x": return String(self._ms);
        default: // S, SS, ... fractions of a second
          return (pad(f.ms, 3) + "000000").slice(0, token.length);
      }
    });
  };

  // ---------------------------------------------------------------- parsing

  var ISO = /^([+-]?\d{4,6})-?(\d\d)-?(\d\d)(?:[T ](\d\d)(?::?(\d\d)(?::?(\d\d)(?:[.,](\d+))?)?)?)?\s*(Z|[+-]\d\d(?::?\d\d)?)?$/i;

  function offsetMinutes(text) {
    if (/^z$/i.test(text)) {
      return 0;
    }
    var m = /^([+-])(\d\d):?(\d\d)?$/.exec(text);
    return (m[1] === "-" ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3] || 0));
  }

  function checkedWall(year, month, date, hour, minute, second, ms, what) {
    var wall = Date.UTC(year, month - 1, date, hour, minute, second, ms);
    var d = new Date(wall);
    if (d.getUTCMonth() !== month - 1 || d.getUTCDate() !== date || hour > 23 || minute > 59 ||
        second > 59) {
      fail("not a valid date: " + JSON.stringify(what));
    }
    return wall;
  }

  // {wall, offset|null} from ISO 8601 text.
  function parseIso(text) {
    var m = ISO.exec(String(text).trim());
    if (!m) {
      fail("cannot read " + JSON.stringify(text) + " (expected ISO 8601, e.g. " +
        "2016-01-30T00:00:00+09:00, or give a format)");
    }
    var ms = m[7] ? Number((m[7] + "00").slice(0, 3)) : 0;
    return {
      wall: checkedWall(Number(m[1]), Number(m[2]), Number(m[3]), Number(m[4] || 0),
        Number(m[5] || 0), Number(m[6] || 0), ms, text),
      offset: m[8] ? offsetMinutes(m[8]) : null
    };
  }

  var PARSE_TOKENS = {
    YYYY: ["(\\d{4})", "year"], YY: ["(\\d\\d)", "yy"], MM: ["(\\d\\d)", "month"],
    M: ["(\\d\\d?)", "month"], DD: ["(\\d\\d)", "date"], D: ["(\\d\\d?)", "date"],
    HH: ["(\\d\\d)", "hour"], H: ["(\\d\\d?)", "hour"], mm: ["(\\d\\d)", "minute"],
    m: ["(\\d\\d?)", "minute"], ss: ["(\\d\\d)", "second"], s: ["(\\d\\d?)", "second"],
    SSS: ["(\\d{3})", "ms"], ZZ: ["([+-]\\d\\d:?\\d\\d|Z)", "offset"],
    Z: ["([+-]\\d\\d:?\\d\\d|Z)", "offset"], X: ["(-?\\d+)", "unix"]
  };

  // {wall, offset|null} (or {instant}) from text written in `format` (numeric tokens only).
  function parseFormat(text, format) {
    var fields = [];
    var source = String(format).replace(/\[([^\]]*)\]|YYYY|YY|MM|M|DD|D|HH|H|mm|m|ss|s|SSS|ZZ|Z|X|[^A-Za-z[]+|[A-Za-z]/g,
      function (token, literal) {
        if (literal !== undefined) {
          return literal.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
        }
        var spec = PARSE_TOKENS[token];
        if (spec) {
          fields.push(spec[1]);
          return spec[0];
        }
        if (/^[A-Za-z]$/.test(token)) {
          fail("format token " + JSON.stringify(token) + " cannot be parsed");
        }
        return token.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
      });
    var m = new RegExp("^" + source + "$").exec(String(text).trim());
    if (!m) {
      fail(JSON.stringify(text) + " does not match the format " + JSON.stringify(format));
    }
    var v = {year: 1970, month: 1, date: 1, hour: 0, minute: 0, second: 0, ms: 0};
    var offset = null;
    for (var i = 0; i < fields.length; i++) {
      var raw = m[i + 1];
      if (fields[i] === "offset") {
        offset = offsetMinutes(raw);
      } else if (fields[i] === "unix") {
        return {instant: Number(raw) * 1000};
      } else if (fields[i] === "yy") {
        var yy = Number(raw);
        v.year = yy + (yy > 68 ? 1900 : 2000);
      } else {
        v[fields[i]] = Number(raw);
      }
    }
    return {wall: checkedWall(v.year, v.month, v.date, v.hour, v.minute, v.second, v.ms, text),
      offset: offset};
  }

  function parsed(input, format) {
    if (format !== undefined) {
      return parseFormat(input, format);
    }
    return parseIso(input);
  }

  function toMoment(input) {
    if (input instanceof Moment) {
      return input;
    }
    return create(input);
  }

  // `keep`: keep the parsed offset (parseZone); otherwise show the instant in `mode`.
  function create(input, format, mode, keep) {
    mode = mode || "local";
    if (input === undefined) {
      return new Moment(Date.now(), mode, 0, null);
    }
    if (input instanceof Moment) {
      return new Moment(input._ms, mode, 0, null);
    }
    if (input instanceof Date) {
      return new Moment(input.getTime(), mode, 0, null);
    }
    if (typeof input === "number") {
      return new Moment(input, mode, 0, null);
    }
    if (typeof input !== "string") {
      fail("cannot read " + JSON.stringify(input));
    }
    var p = parsed(input, format);
    if (p.instant !== undefined) {
      return new Moment(p.instant, mode, 0, null);
    }
    if (p.offset === null) {
      // A wall time without an offset: in UTC (the local zone here).
      return new Moment(p.wall, mode, 0, null);
    }
    var ms = p.wall - p.offset * MINUTE;
    return keep ? new Moment(ms, "fixed", p.offset, null) : new Moment(ms, mode, 0, null);
  }

  var api = function (input, format) {
    return create(input, format, "local", false);
  };
  api.utc = function (input, format) {
    return create(input, format, "utc", false);
  };
  api.parseZone = function (input, format) {
    return create(input, format, "local", true);
  };
  api.unix = function (seconds) {
    return new Moment(Number(seconds) * 1000, "local", 0, null);
  };
  // moment.tz(text, zone): a wall time read in `zone` (an offset in the text wins);
  // moment.tz(instant, zone): that instant shown in `zone`.
  api.tz = function (input, format, zone) {
    if (zone === undefined) {
      zone = format;
      format = undefined;
    }
    zone = String(zone);
    formatter(zone);
    if (typeof input === "string") {
      var p = parsed(input, format);
      if (p.instant !== undefined) {
        return new Moment(p.instant, "zone", 0, zone);
      }
      if (p.offset === null) {
        return new Moment(zoneInstant(zone, p.wall), "zone", 0, zone);
      }
      return new Moment(p.wall - p.offset * MINUTE, "zone", 0, zone);
    }
    return toMoment(input).tz(zone);
  };
  api.isMoment = function (value) {
    return value instanceof Moment;
  };
  return api;
})();
