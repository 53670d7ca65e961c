import Joi from 'joi';


// The one definition of an item's shape: it validates requests, documents responses in the OpenAPI
// document, and (outside production) checks every response the service sends.

const internals = {

    // A text is what PostgreSQL and JSON both carry unchanged: Unicode scalar values other than U+0000.
    // PostgreSQL's text cannot hold NUL (the insert fails), and an unpaired UTF-16 surrogate, which
    // JSON's "\ud800" escape can produce, reaches the database as U+FFFD: refused here, before any SQL.
    // Lengths count code points, as JSON Schema's maxLength and PostgreSQL's varchar(n) do; joi's
    // min/max count UTF-16 units, so the bounds live in the pattern, where both readings agree.
    text(min: number, max: number) {

        const pattern = new RegExp(`^(?:[^\\u0000\\ud800-\\udfff]|[\\ud800-\\udbff][\\udc00-\\udfff]){${min},${max}}$`);
        return Joi.string()
            .pattern(pattern, 'text')
            .messages({ 'string.pattern.name': `{{#label}} must be a text of ${min} to ${max} characters, without U+0000 or unpaired surrogates` })
            .description(`Text of ${min} to ${max} characters (code points), without U+0000 (NUL) or unpaired UTF-16 surrogates; stored and returned exactly as sent`);
    },

    // Any UUID, in its hyphenated form: one that names no item is 404, whatever its version.
    uuid: /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/
};

const name = internals.text(1, 200);
const description = internals.text(1, 2000);
const quantity = Joi.number().integer().min(0).max(2_147_483_647);
const uuid = () => Joi.string().pattern(internals.uuid, 'uuid').messages({ 'string.pattern.name': '{{#label}} must be a UUID' }).meta({ format: 'uuid' });


export const itemId = uuid().description('Item id (UUID)');


export const item = Joi.object({
    id: itemId.required(),
    name: name.required(),
    description: description.allow(null).required(),
    quantity: quantity.required(),
    version: Joi.number().integer().min(1).required().description('Starts at 1, +1 per update; the ETag carries it'),
    createdAt: Joi.date().iso().required(),
    updatedAt: Joi.date().iso().required()
}).label('Item');


export const createItem = Joi.object({
    name: name.required(),
    description,
    quantity: quantity.default(0)
}).required().prefs({ convert: false }).label('CreateItem');    // JSON has types: "3" is not a quantity


export const updateItem = Joi.object({
    name,
    description: description.allow(null),                            // null clears it
    quantity
}).min(1).required().prefs({ convert: false }).label('UpdateItem');


export const idParams = Joi.object({ id: itemId.required() });


// The cursor is the id of the last item of the previous page: any UUID is a position in the key order.
export const cursor = uuid().description('nextCursor of the previous page: the id of its last item; the page starts after it');


export const listQuery = Joi.object({
    limit: Joi.number().integer().min(1).max(100).default(20),
    cursor
});


export const itemList = Joi.object({
    items: Joi.array().items(item).required(),
    nextCursor: cursor.allow(null).required().description('null on the last page')
}).label('ItemList');


export const idempotencyHeaders = Joi.object({
    'idempotency-key': Joi.string().min(1).max(255).pattern(/^[\x21-\x7e]+$/).description('Replays the first response for 24 h')
}).unknown(true);


export const ifNoneMatchHeaders = Joi.object({
    'if-none-match': Joi.string().min(1).description('ETag of a cached version: 304 when it is still current')
}).unknown(true);


const ifMatch = Joi.string().min(1).description('ETag of the version the change is based on; "*" matches any version');

// A missing precondition on PATCH is 428, not 400: the route's failAction tells the two apart.
export const requiredIfMatchHeaders = Joi.object({ 'if-match': ifMatch.required() }).unknown(true);

export const optionalIfMatchHeaders = Joi.object({ 'if-match': ifMatch }).unknown(true);
