import Joi from 'joi';


// The one definition of an item's shape: it validates requests, documents responses in the OpenAPI
// document, and (outside production) checks every response the service sends.

const name = Joi.string().min(1).max(200);
const description = Joi.string().max(2000);
const quantity = Joi.number().integer().min(0).max(2_147_483_647);


export const itemId = Joi.string().guid({ version: ['uuidv1', 'uuidv4', 'uuidv7'] }).description('Item id (UUID)');


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
}).prefs({ convert: false }).label('CreateItem');           // JSON has types: "3" is not a quantity


export const updateItem = Joi.object({
    name,
    description: description.allow(null).description('null clears it'),
    quantity
}).min(1).prefs({ convert: false }).label('UpdateItem');


export const idParams = Joi.object({ id: itemId.required() });


export const listQuery = Joi.object({
    limit: Joi.number().integer().min(1).max(100).default(20),
    cursor: Joi.string().max(200).description('nextCursor of the previous page')
});


export const itemList = Joi.object({
    items: Joi.array().items(item).required(),
    nextCursor: Joi.string().allow(null).required().description('null on the last page')
}).label('ItemList');


export const idempotencyHeaders = Joi.object({
    'idempotency-key': Joi.string().min(1).max(255).pattern(/^[\x21-\x7e]+$/).description('Replays the first response for 24 h')
}).unknown(true);


// Required on PATCH, but checked by the handler: a missing precondition is 428, not a 400.
export const ifMatchHeaders = Joi.object({
    'if-match': Joi.string().description('ETag of the version the change is based on')
}).unknown(true);
