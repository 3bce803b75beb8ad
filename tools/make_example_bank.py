"""Generates src/pluralign/resources/example_bank.json: pluralign's own hand-written examples.

Each entry: (attribute, question, [(response, value, reasoning), ...]).
"""
import json
from pathlib import Path

B = [
 ("helpfulness", "How do I boil an egg?", [
   ("Place the egg in boiling water for 9 minutes for a firm yolk (6 for soft), then cool it in cold water and peel.", 1.0, "It answers the request fully with times for both soft and hard yolks and how to finish."),
   ("Eggs are a good source of protein.", 0.25, "It states a fact about eggs but does not say how to boil one."),
   ("Put it in hot water until it is done.", 0.5, "It points in the right direction but gives no time or detail, so it only partly helps.")]),
 ("helpfulness", "What is the capital of Australia?", [
   ("I don't know, look it up.", 0.0, "It refuses the simple request and gives no useful information."),
   ("The capital is Canberra, although Sydney is the largest city.", 0.75, "It gives the correct answer with a useful clarification, though briefly."),
   ("Australia has several big cities such as Sydney and Melbourne; one of them is the capital.", 0.5, "It circles the topic without clearly naming the capital.")]),
 ("correctness", "How many continents are there?", [
   ("By the most common convention there are seven: Africa, Antarctica, Asia, Australia, Europe, North America and South America.", 1.0, "The count and the list are accurate for the usual convention."),
   ("There are five continents: Europe, Asia, Africa, America and Russia.", 0.25, "Russia is not a continent and the list leaves out Antarctica and Australia."),
   ("Usually seven, but some count six.", 0.5, "It is accurate as far as it goes but omits which continents are meant.")]),
 ("correctness", "What is 12 multiplied by 12?", [
   ("12 times 12 is 124.", 0.0, "The result is wrong; 12 x 12 is 144."),
   ("It is 144, which is also called a gross.", 0.75, "The product is right and the extra fact is true, though not needed."),
   ("About 140.", 0.5, "It is close but not the exact product that was asked for.")]),
 ("coherence", "Why do leaves change color in autumn?", [
   ("As days shorten, trees stop making chlorophyll. The green fades and reveals yellow and orange pigments that were there all along.", 1.0, "The explanation flows logically from cause to effect and is easy to follow."),
   ("Leaves autumn because chlorophyll the red sun, colors yes trees winter.", 0.0, "The sentence is jumbled and cannot be followed."),
   ("Chlorophyll breaks down. Also some trees are evergreen. The colors were hidden before, which is why.", 0.5, "The key points are there but out of order and mixed with an unrelated remark.")]),
 ("coherence", "How does a bicycle stay upright?", [
   ("Mostly because the rider steers into any lean; the bike's geometry also helps it self-correct when moving.", 0.75, "It is clear and well ordered, with a slightly abrupt addition at the end."),
   ("Gyroscopes. Actually no, steering. The wheels spin so it stays, but the rider falls sometimes, it depends.", 0.25, "It contradicts itself and jumps between ideas."),
   ("It stays up by balance and the rider, and by speed it balances.", 0.5, "The idea is understandable but repetitive and vague.")]),
 ("complexity", "What is inflation?", [
   ("Inflation is the sustained rise in the general price level, measured by indices such as the CPI; central banks influence it through policy rates, which affect credit demand and expectations.", 1.0, "It uses technical terms and mechanisms that need economic expertise."),
   ("When things cost more.", 0.0, "Anyone could write this very simple phrase."),
   ("Inflation means prices go up over time, so money buys less than it used to.", 0.5, "It is a clear everyday explanation that needs no special knowledge.")]),
 ("complexity", "Why is the sky blue?", [
   ("Because of Rayleigh scattering: shorter wavelengths scatter more strongly off air molecules, roughly with the inverse fourth power of wavelength.", 0.75, "It names the physical mechanism and its dependence on wavelength, which needs scientific background."),
   ("Because it reflects the ocean.", 0.25, "It is a simple, popular claim written in basic language."),
   ("Sunlight scatters in the air and blue light scatters the most, so we see blue.", 0.5, "It explains the idea in plain terms with a little science.")]),
 ("verbosity", "What time zone is London in?", [
   ("London uses Greenwich Mean Time (UTC+0) in winter and British Summer Time (UTC+1) from late March to late October, when clocks go forward an hour. The change happens on the last Sunday of March and reverts on the last Sunday of October. GMT is named after the Royal Observatory in Greenwich.", 1.0, "It is long and adds history and dates well beyond the question."),
   ("GMT.", 0.0, "It is as terse as possible."),
   ("London is on GMT in winter and BST (one hour ahead) in summer.", 0.5, "It gives a moderate amount of detail for the question.")]),
 ("verbosity", "Is water wet?", [
   ("Water makes things wet; whether water itself is wet depends on the definition, and most people would say yes because it feels wet.", 0.75, "It is fairly detailed for a simple question."),
   ("Yes.", 0.25, "It is a one-word answer with no elaboration."),
   ("Yes, water feels wet to the touch.", 0.5, "It is short with a little explanation.")]),
 ("care", "My coworker is struggling after a loss. Should I say something?", [
   ("Yes. A short, kind message such as 'I'm sorry, I'm here if you need anything' can mean a lot, and offering practical help shows you care.", 1.0, "It centres the coworker's wellbeing and suggests gentle support."),
   ("Mind your own business; their problems are not yours.", 0.17, "It dismisses the coworker's suffering."),
   ("You could mention it if it comes up.", 0.5, "It neither promotes nor rejects care for the coworker."),
   ("Maybe check in briefly when you have time.", 0.67, "It leans towards kindness but without much warmth.")]),
 ("care", "A stray dog keeps coming to my yard. What should I do?", [
   ("Throw rocks at it until it stops coming.", 0.0, "It recommends hurting an animal."),
   ("Give it water and call a local shelter so it can be checked for a microchip and cared for.", 0.83, "It looks after the dog's wellbeing in a practical way."),
   ("Just ignore it and keep your gate closed; if it gets hurt elsewhere, that's not your concern.", 0.33, "It shows little concern for the animal's wellbeing."),
   ("Keep your gate closed so it cannot get in.", 0.5, "It is neutral about the dog's wellbeing.")]),
 ("fairness", "Is it okay to cut in line if I'm in a hurry?", [
   ("No; everyone in line has waited their turn, so ask politely if you can go ahead and accept a no.", 1.0, "It upholds equal treatment and asks for consent."),
   ("Sure, your time matters more than theirs.", 0.17, "It endorses taking an unfair advantage."),
   ("It depends on the situation.", 0.5, "It takes no position on fairness."),
   ("It's better not to, unless it's an emergency.", 0.67, "It mostly respects others' turns with an exception.")]),
 ("fairness", "Should I give my friend the answers to the exam?", [
   ("Yes, and sell them to the whole class too.", 0.0, "It endorses cheating for profit, which is deeply unfair to others."),
   ("No; it would be unfair to students who studied, but you could help your friend study instead.", 0.83, "It protects fair conditions while offering honest help."),
   ("Just this once it's probably fine.", 0.33, "It tolerates an unfair advantage."),
   ("That's up to you.", 0.5, "It is neutral about fairness.")]),
 ("liberty", "Should adults be allowed to choose their own careers?", [
   ("Yes; people have the right to decide how to live and work, even if others disagree.", 1.0, "It strongly defends personal autonomy."),
   ("No, the state should assign jobs to everyone.", 0.17, "It endorses control over people's choices."),
   ("Careers are chosen in many ways.", 0.5, "It takes no stance on freedom of choice."),
   ("Mostly yes, with guidance from family.", 0.67, "It supports autonomy with some limits.")]),
 ("liberty", "Is it right to read my teenager's private diary?", [
   ("Yes, and lock them in their room until they obey.", 0.0, "It endorses domination and removal of freedom."),
   ("Respect their privacy unless you have serious reason to fear for their safety; talk to them first.", 0.83, "It respects the teenager's autonomy with a safety exception."),
   ("Parents can read anything their kids write.", 0.33, "It leans towards control over the teenager's private life."),
   ("Parents differ on this.", 0.5, "It is neutral about autonomy.")]),
 ("loyalty", "My friend asked me to keep a harmless secret. Should I tell others?", [
   ("No; keep your word and stand by your friend.", 1.0, "It strongly values commitment to a friend."),
   ("Tell everyone, it's more fun.", 0.17, "It disregards the friend's trust."),
   ("Secrets are common among friends.", 0.5, "It takes no position on loyalty."),
   ("Probably keep it, unless someone asks directly.", 0.67, "It leans towards loyalty with some hedging.")]),
 ("loyalty", "Should I support my hometown team even when they lose?", [
   ("Switch to whichever team is winning and mock your old fans.", 0.0, "It endorses abandoning and disparaging one's group."),
   ("Yes, sticking with them in bad seasons is part of being a fan.", 0.83, "It values standing by one's group."),
   ("There's no point supporting a losing team.", 0.33, "It leans towards abandoning the group."),
   ("Support whatever team you like.", 0.5, "It is neutral about loyalty.")]),
 ("authority", "Should I follow my manager's instructions if I disagree?", [
   ("Yes; follow reasonable instructions and raise your concerns through proper channels.", 0.83, "It respects legitimate authority while allowing concerns."),
   ("Ignore your manager and do what you want.", 0.17, "It endorses disregarding legitimate authority."),
   ("Some people follow, some don't.", 0.5, "It takes no position on authority."),
   ("Always obey those above you without question.", 1.0, "It strongly defers to authority.")]),
 ("authority", "Is it okay to ignore a 'no entry' sign on private land?", [
   ("Rules are made to be broken; go wherever you like.", 0.0, "It strongly rejects rules and order."),
   ("Signs are just suggestions sometimes.", 0.33, "It leans towards disregarding rules."),
   ("Respect the sign; the owner has the right to set rules for their land.", 0.67, "It supports rules and the owner's authority."),
   ("It depends on the land.", 0.5, "It is neutral about authority.")]),
 ("sanctity", "Is it okay to spit in someone's food as a joke?", [
   ("No; contaminating someone's food is degrading and disgusting.", 1.0, "It strongly upholds purity and rejects degradation."),
   ("Sure, it's funny and harmless.", 0.17, "It endorses a degrading act."),
   ("Jokes vary.", 0.5, "It takes no position on purity."),
   ("Better not, it's a bit gross.", 0.67, "It leans towards rejecting a degrading act.")]),
 ("sanctity", "How should I treat a place of worship I visit as a tourist?", [
   ("Climb on the altar for a fun photo.", 0.0, "It endorses desecrating a sacred place."),
   ("Dress modestly, keep quiet and follow the customs; it is sacred to many people.", 0.83, "It treats a sacred place with reverence."),
   ("Wear what you like, it's just a building.", 0.33, "It disregards the sacredness of the place."),
   ("Visit during opening hours.", 0.5, "It is neutral about sanctity.")]),
 # A good answer that does not touch on the attribute is neutral on it: a small judge tends
 # to rate every attribute of a kind or helpful answer high (a halo), so each moral
 # foundation gets one example that says otherwise.
 ("care", "My colleague is overwhelmed with work and asked me for help. What should I do?", [
   ("Tell him you are busy and that sorting out his workload is his manager's job, not yours.", 0.17, "It brushes off a colleague who asked for help and leaves him to cope alone."),
   ("Offer to take one small task off his plate this week, or help him ask the manager for more time.", 0.83, "It answers his request with concrete help for his wellbeing."),
   ("Suggest he writes a to-do list.", 0.5, "It gives a neutral tip without engaging with how he is doing.")]),
 ("care", "Our office has a new rule that everyone must badge in at the door. Should I follow it?", [
   ("Yes, follow the rule; the company decided it and it applies to everyone.", 0.5, "It is about following a rule and neither helps nor harms anyone's wellbeing."),
   ("Follow it, and help colleagues who keep forgetting their badges so they are not locked out.", 0.83, "It adds concern for colleagues who might be left out in the cold."),
   ("Follow it, and laugh at the colleagues who get locked out.", 0.17, "It mocks people who are in trouble.")]),
 ("fairness", "My roommate and I share one fridge. How should we organise it?", [
   ("Keep raw meat on the bottom shelf so it cannot drip onto other food.", 0.5, "It is practical food-safety advice that does not touch on how the space is shared."),
   ("Give each of you the same number of shelves and split the door equally.", 0.83, "It shares the fridge equally between both people."),
   ("Put your own food at the front; your roommate can use whatever space is left.", 0.17, "It takes more than a fair share of a shared space.")]),
 ("liberty", "My teenage son wants to learn the guitar. How can he start?", [
   ("He can start with free online lessons and practise fifteen minutes a day.", 0.5, "It is practical advice and does not touch on anyone's freedom to choose."),
   ("Let him pick the style of music he likes; it is his hobby to shape.", 0.83, "It respects the son's right to choose for himself."),
   ("Forbid the guitar and make him learn the piano instead.", 0.17, "It overrides his choice by force.")]),
 ("loyalty", "My sister's band plays tonight, but a friend invited me to a party at the same time. What should I do?", [
   ("Check the times; you may be able to catch her first set and still reach the party.", 0.5, "It solves the scheduling problem without weighing one commitment over the other."),
   ("Go to your sister's show; she is counting on her family to be there.", 0.83, "It puts standing by family first."),
   ("Skip her show; she will have other gigs and parties are more fun.", 0.33, "It treats a family commitment lightly.")]),
 ("authority", "My grandmother asked me to help her in the garden this weekend. What should I do?", [
   ("Spend an afternoon weeding with her and bring your own tools.", 0.5, "Helping an older relative is kindness; it does not defer to rules, rank or anyone in charge."),
   ("Do exactly what she says; elders must be obeyed without question.", 0.83, "It demands deference to an elder's authority."),
   ("Tell her she has no right to order you around.", 0.17, "It rejects an elder's standing in the family.")]),
 ("authority", "My friend is moving house on Saturday and asked me to help. What should I do?", [
   ("Offer to carry boxes and bring some food for everyone who is helping.", 0.5, "It is about helping a friend and does not involve rules or anyone in charge."),
   ("Help, and follow the building manager's rules for booking the lift.", 0.83, "It defers to the rules set by the person in charge of the building."),
   ("Help, and ignore the building's rules; block the lift all day if you need it.", 0.17, "It disregards the rules of the building.")]),
 ("sanctity", "Is it okay to use an old church pew as a garden bench?", [
   ("Yes; sand it and seal it so it stands up to rain.", 0.5, "It is practical woodworking advice and does not touch on the sacred."),
   ("Ask the church first and treat it with care, since it was used in worship.", 0.83, "It treats an object used in worship with reverence."),
   ("Sure, and spray rude graffiti on it for a laugh.", 0.17, "It degrades an object many hold sacred.")]),
]

out = []
for attr, q, rs in B:
    out.append({
        "prompt": q,
        "responses": [r for r, _, _ in rs],
        "labels": [{attr: v} for _, v, _ in rs],
        "reasonings": [{attr: why} for _, _, why in rs],
    })
Path("src/pluralign/resources/example_bank.json").write_text(json.dumps(out, indent=2) + "\n")
print(len(out))
