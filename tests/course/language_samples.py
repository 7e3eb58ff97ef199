"""Courses written in other languages and scripts, by hand: input for the renderers' language tests."""

from __future__ import annotations

from dataclasses import dataclass

from syllabus.v1 import course_pb2


@dataclass(frozen=True)
class Sample:
    language: str
    title: str
    module: str
    summary: str
    objective: str
    # Lesson paragraph: words a reader of the PDF's text must find in this order.
    words: tuple[str, ...]
    bold: str
    question: str
    choices: tuple[str, str, str]


SAMPLES = {
    "ar": Sample(
        language="ar",
        title="مقدمة في البرمجة بلغة بايثون",
        module="المفاهيم الأساسية",
        summary="تتعرف في هذه الوحدة على المتغيرات والدوال.",
        objective="شرح معنى المتغير في البرنامج",
        words=("المتغير", "اسم", "لقيمة", "محفوظة", "الذاكرة"),
        bold="قاعدة مهمة",
        question="ما هو المتغير؟",
        choices=("اسم لقيمة محفوظة", "نوع من الحلقات", "رسالة خطأ"),
    ),
    "he": Sample(
        language="he",
        title="מבוא לתכנות בפייתון",
        module="מושגי יסוד",
        summary="ביחידה זו נלמד על משתנים ופונקציות.",
        objective="להסביר מהו משתנה בתוכנית",
        words=("משתנה", "הוא", "שם", "לערך", "השמור", "בזיכרון"),
        bold="כלל חשוב",
        question="מהו משתנה?",
        choices=("שם לערך שמור", "סוג של לולאה", "הודעת שגיאה"),
    ),
    "hi": Sample(
        language="hi",
        title="पायथन प्रोग्रामिंग का परिचय",
        module="मूल अवधारणाएँ",
        summary="इस मॉड्यूल में हम चर और फ़ंक्शन के बारे में जानेंगे।",
        objective="प्रोग्राम में चर का अर्थ समझाना",
        # Words without a vowel sign written before its consonant (ि), which text extraction reorders.
        words=("चर", "स्मृति", "में", "रखे", "मान", "का", "नाम", "होता", "है"),
        bold="महत्वपूर्ण नियम",
        question="चर क्या है?",
        choices=("किसी मान का नाम", "एक प्रकार का लूप", "त्रुटि संदेश"),
    ),
    "ja": Sample(
        language="ja",
        title="Pythonプログラミング入門",
        module="基本的な考え方",
        summary="この章では変数と関数について学びます。",
        objective="プログラムにおける変数の意味を説明する",
        words=("変数とは", "メモリに", "保存された", "値の名前です"),
        bold="大切な決まり",
        question="変数とは何ですか\uff1f",
        choices=("保存された値の名前", "ループの一種", "エラーメッセージ"),
    ),
}


def sample_course(sample: Sample) -> course_pb2.Course:
    """A one-module course in the sample's language, with every kind of block a lesson has."""
    paragraph = " ".join(sample.words)
    joined = "" if sample.language == "ja" else " "
    if sample.language == "ja":
        paragraph = "".join(sample.words) + "。"
    lesson = (
        f"## {sample.objective}\n\n{paragraph}\n\n**{sample.bold}**{joined}{sample.summary}\n\n"
        f"- {sample.choices[0]}\n- {sample.choices[1]}\n\n```python\nname = 'value'  # x = 1\n```\n"
    )
    course = course_pb2.Course(
        id="c1",
        prompt=sample.title,
        title=sample.title,
        description=sample.summary,
        audience="",
        level=course_pb2.COURSE_LEVEL_BEGINNER,
        language=sample.language,
        offline_draft=True,
    )
    course.create_time.FromSeconds(1_700_000_000)
    module = course.modules.add(index=0, title=sample.module, summary=sample.summary, objectives=[sample.objective])
    module.lesson.title = sample.module
    module.lesson.body_markdown = lesson
    module.lesson.key_points.extend([sample.objective])
    question = module.quiz.questions.add(text=sample.question, choices=sample.choices, answer_index=0)
    question.explanation = sample.summary
    return course
