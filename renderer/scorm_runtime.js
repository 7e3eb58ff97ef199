// The course pages' link to the LMS: finds the SCORM API up the frame and opener chain, reports a lesson as
// completed when it opens and a quiz's score and pass or fail when it is submitted. Without an LMS the pages
// still work (the quiz shows its score). The SCORM version is written into VERSION when the package is built.
(function () {
  'use strict';
  var VERSION = '__SCORM_VERSION__';
  var NAME = VERSION === '1.2' ? 'API' : 'API_1484_11';
  var CALLS = VERSION === '1.2'
    ? { start: 'LMSInitialize', set: 'LMSSetValue', commit: 'LMSCommit', finish: 'LMSFinish' }
    : { start: 'Initialize', set: 'SetValue', commit: 'Commit', finish: 'Terminate' };

  // The search SCORM's run-time documents describe: this window's parents, then the opener's.
  function search(win) {
    for (var hops = 0; win && hops < 500; hops += 1) {
      try {
        if (win[NAME]) { return win[NAME]; }
      } catch (e) {
        return null; // another origin's window: not ours to read
      }
      if (!win.parent || win.parent === win) { break; }
      win = win.parent;
    }
    return null;
  }

  function findApi() {
    var api = search(window);
    if (!api && window.opener) { api = search(window.opener); }
    if (!api && window.top && window.top.opener) { api = search(window.top.opener); }
    return api;
  }

  var api = findApi();
  var state = 'new';

  function call(name, args) {
    if (!api || typeof api[CALLS[name]] !== 'function') { return false; }
    return String(api[CALLS[name]].apply(api, args)) === 'true';
  }

  var lms = {
    start: function () {
      if (state === 'new' && call('start', [''])) { state = 'started'; }
      return state === 'started';
    },
    set: function (key, value) { return state === 'started' && call('set', [key, String(value)]); },
    commit: function () { return state === 'started' && call('commit', ['']); },
    finish: function () {
      if (state !== 'started') { return; }
      state = 'finished';
      call('finish', ['']);
    },
  };

  function completeLesson() {
    lms.set(VERSION === '1.2' ? 'cmi.core.lesson_status' : 'cmi.completion_status', 'completed');
    lms.commit();
  }

  function reportScore(correct, total, passing) {
    var scaled = total ? correct / total : 0;
    var passed = scaled >= passing ? 'passed' : 'failed';
    if (VERSION === '1.2') {
      lms.set('cmi.core.score.raw', correct);
      lms.set('cmi.core.score.min', 0);
      lms.set('cmi.core.score.max', total);
      lms.set('cmi.core.lesson_status', passed);
    } else {
      lms.set('cmi.score.scaled', scaled);
      lms.set('cmi.score.raw', correct);
      lms.set('cmi.score.min', 0);
      lms.set('cmi.score.max', total);
      lms.set('cmi.completion_status', 'completed');
      lms.set('cmi.success_status', passed);
    }
    lms.commit();
    lms.finish();
    return passed;
  }

  function gradeQuiz(form) {
    var questions = form.querySelectorAll('fieldset[data-answer]');
    var correct = 0;
    questions.forEach(function (question) {
      var chosen = question.querySelector('input:checked');
      var right = chosen !== null && chosen.value === question.getAttribute('data-answer');
      if (right) { correct += 1; }
      question.classList.add(right ? 'right' : 'wrong');
      question.querySelector('.explanation').hidden = false;
    });
    form.querySelectorAll('input, button').forEach(function (input) { input.disabled = true; });
    var passed = reportScore(correct, questions.length, Number(form.getAttribute('data-passing')));
    var result = document.getElementById('result');
    var score = result.getAttribute('data-score').replace('{correct}', correct).replace('{total}', questions.length);
    var verdict = result.getAttribute('data-' + passed);
    result.textContent = score + ' (' + verdict + ')'
      + (state === 'finished' ? '' : ' (no LMS found: the score was not reported)');
    result.hidden = false;
  }

  document.addEventListener('DOMContentLoaded', function () {
    lms.start();
    var form = document.getElementById('quiz');
    if (form) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        gradeQuiz(form);
      });
    } else {
      completeLesson();
    }
  });
  window.addEventListener('pagehide', function () { lms.finish(); });
})();
